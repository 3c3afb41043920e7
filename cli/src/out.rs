//! Standard output that never panics: `println!` panics when the reader
//! went away (`libos audit --json | head -1`) or the disk is full
//! (`> /dev/full`). Every command prints through `outln!` instead: a closed pipe ends the program quietly with the status a shell
//! gives a program killed by `SIGPIPE` (141), any other failure is one line
//! on standard error and exit status 1.

use std::io::Write;

/// Writes formatted text to standard output, or ends the program as above.
pub fn write(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_fmt(args) {
        fail(&e);
    }
}

/// Writes bytes to standard output as they are, or ends the program as above.
pub fn write_bytes(bytes: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        fail(&e);
    }
}

fn fail(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(141);
    }
    // "No space left on device (os error 28)" -> "no space left on device".
    let text = e.to_string();
    let text = text.split(" (os error").next().unwrap_or(&text).to_lowercase();
    eprintln!("libos: error: cannot write to standard output: {text}");
    std::process::exit(i32::from(crate::exit::ERROR));
}

/// `println!` that ends the program cleanly when standard output fails.
macro_rules! outln {
    () => { $crate::out::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::out::write(format_args!("{}\n", format_args!($($arg)*))) };
}
