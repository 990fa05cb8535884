//! Link the `wellbeing` binary with packed relative relocations (DT_RELR) where the C library
//! it is built against can load them (glibc 2.36 and later, as in the release image).
//!
//! Why: as a position-independent executable the binary carries about 100,000 relative
//! relocations. In the classic format the loader reads 2.4 MB of them at every start, and those
//! pages stay resident for the life of the process (the operator's resident set). Packed, the
//! same relocations take a few kilobytes; the binary is still position independent.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if target_os != "linux" || target_env != "gnu" {
        return;
    }
    // A glibc older than 2.36 would refuse to start a binary that needs it, so look for the
    // version tag in the glibc the binary links with (the build machine's, in a native build).
    if glibc_loads_relr() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

fn glibc_loads_relr() -> bool {
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let host = std::env::var("HOST").unwrap_or_default();
    let target = std::env::var("TARGET").unwrap_or_default();
    if host != target {
        return false;
    }
    let candidates = [format!("/lib/{arch}-linux-gnu/libc.so.6"), "/lib64/libc.so.6".to_string()];
    candidates.iter().filter_map(|path| std::fs::read(path).ok()).any(|bytes| {
        let tag = b"GLIBC_ABI_DT_RELR";
        bytes.windows(tag.len()).any(|w| w == tag)
    })
}
