//! `softline` binary (being assembled: phone core and runtime land next).
fn main() {
    eprintln!("softline: headless phone not assembled yet");
}
