fn main() {
    println!("{}", env!("DBI_RUNTIME_PATH"));
}
