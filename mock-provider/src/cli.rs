//! Command-line arguments.

use std::time::Duration;

use hyper::header::HeaderValue;
use model_router_core::tokens::Encoding;

use crate::faults::FaultSpec;
use crate::Config;

pub const USAGE: &str = "\
usage: mock-provider [--listen ADDR] [--name NAME] [--fault SPEC]... [--latency-ms N]
                     [--encoding o200k_base|cl100k_base] [--no-record] [--max-records N]

  --listen ADDR       address to serve HTTP/1.1 and h2c on (default 127.0.0.1:0;
                      port 0 picks a free port, printed when ready)
  --name NAME         provider name: in answers, x-mock-provider and fault targets
                      (default mock)
  --fault SPEC        fault applied to every request, e.g. '*=503' or
                      'gpt-4o=count:2:429' (repeatable; checked after the
                      request's own x-mock-fault header)
  --latency-ms N      wait N ms before every answer
  --encoding E        token encoding for usage (default o200k_base)
  --no-record         do not record requests (benchmarks)
  --max-records N     records kept for GET /__mock/requests (default 10000)
  --tls-cert PEM      serve HTTPS with this certificate chain (and --tls-key);
  --tls-key PEM       plain HTTP still works on the same port, and each TLS
                      request's record carries the SNI it asked for
  -h, --help          this help
  -V, --version       version

Prints `mock-provider NAME listening on ADDR` when ready; exits on SIGTERM/SIGINT.";

/// What the command line asks for.
#[derive(Debug, Clone)]
pub enum Command {
    Run { listen: String, config: Config },
    Help,
    Version,
}

/// Parses arguments (without the program name).
pub fn parse_args<I, S>(args: I) -> Result<Command, String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut listen = "127.0.0.1:0".to_string();
    let mut config = Config::new("mock");
    let mut args = args.into_iter().map(Into::into);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_string(), Some(value.to_string()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match &inline {
                Some(value) => Ok(value.clone()),
                None => args.next().ok_or_else(|| format!("{name} needs a value")),
            }
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--listen" => listen = value("--listen")?,
            "--name" => {
                let name = value("--name")?;
                if name.is_empty() || HeaderValue::from_str(&name).is_err() {
                    return Err(format!(
                        "--name {name:?} must be a non-empty header-safe string"
                    ));
                }
                config.name = name;
            }
            "--fault" => {
                let spec = FaultSpec::parse(&value("--fault")?).map_err(|e| e.to_string())?;
                config.faults.rules.extend(spec.rules);
            }
            "--latency-ms" => {
                let ms = value("--latency-ms")?;
                let ms: u64 = ms
                    .parse()
                    .map_err(|_| format!("--latency-ms {ms:?} is not a number"))?;
                config.latency = Duration::from_millis(ms);
            }
            "--encoding" => {
                let name = value("--encoding")?;
                config.encoding = Encoding::from_name(&name).ok_or_else(|| {
                    format!("unknown encoding {name:?} (o200k_base or cl100k_base)")
                })?;
            }
            "--no-record" => {
                if inline.is_some() {
                    return Err("--no-record takes no value".to_string());
                }
                config.record = false;
            }
            "--tls-cert" => {
                let cert = value("--tls-cert")?;
                let key = config.tls.take().map(|t| t.key).unwrap_or_default();
                config.tls = Some(crate::tls::TlsFiles { cert, key });
            }
            "--tls-key" => {
                let key = value("--tls-key")?;
                let cert = config.tls.take().map(|t| t.cert).unwrap_or_default();
                config.tls = Some(crate::tls::TlsFiles { cert, key });
            }
            "--max-records" => {
                let n = value("--max-records")?;
                config.max_records = n
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("--max-records {n:?} is not a positive number"))?;
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if let Some(tls) = &config.tls {
        if tls.cert.is_empty() || tls.key.is_empty() {
            return Err("--tls-cert and --tls-key go together".to_string());
        }
    }
    Ok(Command::Run { listen, config })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::faults::{Action, Target};

    fn run(args: &[&str]) -> (String, Config) {
        match parse_args(args.iter().copied()).unwrap() {
            Command::Run { listen, config } => (listen, config),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_the_documented_flags() {
        let (listen, config) = run(&[
            "--listen",
            "127.0.0.1:9000",
            "--name",
            "p1",
            "--fault",
            "gpt-4o=429",
            "--fault=*=count:1:503",
            "--latency-ms",
            "25",
            "--encoding",
            "cl100k_base",
            "--no-record",
        ]);
        assert_eq!(listen, "127.0.0.1:9000");
        assert_eq!(config.name, "p1");
        assert_eq!(config.faults.rules.len(), 2);
        assert_eq!(config.faults.rules[0].action, Action::Status(429));
        assert_eq!(config.faults.rules[1].target, Target::Any);
        assert_eq!(config.latency, Duration::from_millis(25));
        assert_eq!(config.encoding, Encoding::Cl100kBase);
        assert!(!config.record);
    }

    #[test]
    fn defaults() {
        let (listen, config) = run(&[]);
        assert_eq!(listen, "127.0.0.1:0");
        assert_eq!(config.name, "mock");
        assert!(config.faults.is_empty());
        assert!(config.record);
        assert_eq!(config.encoding, Encoding::O200kBase);
    }

    #[test]
    fn errors() {
        for bad in [
            &["--bogus"][..],
            &["--name"],
            &["--name", ""],
            &["--fault", "x=boom"],
            &["--latency-ms", "soon"],
            &["--encoding", "p50k_base"],
            &["--no-record=1"],
        ] {
            assert!(parse_args(bad.iter().copied()).is_err(), "{bad:?}");
        }
        assert!(matches!(parse_args(["--help"]), Ok(Command::Help)));
    }
}
