// Links the runtime as a static, non-PIE executable at a fixed base far above
// where the kernel and ld.so put applications, with no C start files.
const IMAGE_BASE: &str = "0x7e0000000000";

fn main() {
    // Cargo applies a bin's link arguments to its unit-test build too, and
    // std's harness cannot link without start files and libc: the tests ask
    // for a plain link with the `host-tests` feature.
    if std::env::var_os("CARGO_FEATURE_HOST_TESTS").is_none() {
        println!("cargo::rustc-link-arg-bins=-nostartfiles");
        println!("cargo::rustc-link-arg-bins=-nostdlib");
        println!("cargo::rustc-link-arg-bins=-static");
        println!("cargo::rustc-link-arg-bins=-no-pie");
        println!("cargo::rustc-link-arg-bins=-Wl,--image-base={IMAGE_BASE}");
        println!("cargo::rustc-link-arg-bins=-Wl,--build-id=none");
    }
    println!("cargo::rustc-env=DBI_IMAGE_BASE={IMAGE_BASE}");
    println!("cargo::rustc-env=DBI_RUNTIME_VERSION={:08x}", source_hash(&std::env::current_dir().unwrap()));
    println!("cargo::rerun-if-changed=build.rs");
}

include!("source_hash.rs");
