//! `mock-provider`: the CLI over the `mock_provider` library.

use std::io::Write;
use std::process::ExitCode;

use mock_provider::cli::{self, Command};
use mock_provider::{Config, Server};
use tokio::net::TcpListener;

fn main() -> ExitCode {
    let (listen, config) = match cli::parse_args(std::env::args().skip(1)) {
        Ok(Command::Run { listen, config }) => (listen, config),
        Ok(Command::Help) => {
            println!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("mock-provider {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("mock-provider: {message}\n\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mock-provider: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(listen, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("mock-provider: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(listen: String, config: Config) -> Result<(), String> {
    let name = config.name.clone();
    let listener = TcpListener::bind(&listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let server = Server::new(config, listener).map_err(|e| e.to_string())?;
    let addr = server.local_addr().map_err(|e| e.to_string())?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "mock-provider {name} listening on {addr}")
            .and_then(|()| stdout.flush())
            .map_err(|e| format!("cannot write to stdout: {e}"))?;
    }
    server
        .run_until(shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
