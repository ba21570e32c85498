//! `base_url`: `http(s)://host[:port][/path]`, nothing else. A small parser
//! rather than the `url` crate: this runs in the filter too, whose `.wasm`
//! is kept under 4 MB, and a base URL needs no IDNA, userinfo, query or
//! fragment (all refused here).

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    pub tls: bool,
    /// Lower-case DNS name or IPv4 address.
    pub host: String,
    pub port: u16,
    /// `""` or `/seg/...` without a trailing slash.
    pub path: String,
}

impl BaseUrl {
    /// `host`, or `host:port` when the port is not the scheme's default: the Host header.
    pub fn authority(&self) -> String {
        if self.port == if self.tls { 443 } else { 80 } {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub fn parse(text: &str) -> Result<BaseUrl, String> {
        let (tls, rest) = if let Some(rest) = text.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = text.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!(
                "{text:?} needs a scheme: https://host/path or http://host:port/path"
            ));
        };
        if rest.contains(['?', '#', '@'])
            || rest.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(format!(
                "{text:?}: a base URL has no query, fragment, credentials or spaces"
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => {
                let port = port
                    .parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("{text:?}: bad port {port:?}"))?;
                (host, port)
            }
            None => (authority, if tls { 443 } else { 80 }),
        };
        if !valid_host(host) {
            return Err(format!("{text:?} has no valid host"));
        }
        Ok(BaseUrl {
            tls,
            host: host.to_ascii_lowercase(),
            port,
            path: path.trim_end_matches('/').to_string(),
        })
    }
}

/// A DNS name or IPv4 address: labels of letters, digits and `-`.
fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scheme_host_port_and_path() {
        let url = BaseUrl::parse("https://API.openai.com/v1/").unwrap();
        assert_eq!(
            url,
            BaseUrl {
                tls: true,
                host: "api.openai.com".into(),
                port: 443,
                path: "/v1".into()
            }
        );
        let url = BaseUrl::parse("http://vllm.internal:8000").unwrap();
        assert_eq!((url.tls, url.port, url.path.as_str()), (false, 8000, ""));
        assert_eq!(BaseUrl::parse("http://10.0.0.1/v1").unwrap().port, 80);
    }

    #[test]
    fn refuses_what_is_not_a_base_url() {
        for bad in [
            "api.openai.com/v1",
            "ftp://x/v1",
            "https:///v1",
            "https://:443/v1",
            "https://a..b/v1",
            "https://host:0",
            "https://host:99999",
            "https://user@host/v1",
            "https://host/v1?x=1",
            "https://ho st/v1",
            "https://-host/v1",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
