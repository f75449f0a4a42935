fn main() {
    std::process::exit(btsx::app::run());
}
