//! `libos-sandbox`: the launcher that builds a sandbox and runs one program
//! in it. Started by libos (never by hand) with the job in its environment.

fn main() {
    if !libos_sandbox::launch::invoked() {
        eprintln!("libos-sandbox: this program is started by libos to run a program in its sandbox, not by hand");
        std::process::exit(libos_sandbox::launch::EXIT_SETUP);
    }
    libos_sandbox::launch::main()
}
