fn main() {
    std::process::exit(appgear::cli::main());
}
