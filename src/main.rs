//! runner: parse → run → exit code.

fn main() -> std::process::ExitCode {
    runner::app::main()
}
