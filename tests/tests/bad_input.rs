//! `dbirun` on things it cannot run: it must exit with a shell-style status
//! (126: found but not executable / bad format, 127: not found), print a
//! single clear line on stderr that names the file, print nothing on stdout,
//! and never die of a signal.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use dbi_tests::{run_dbirun, temp_dir, Observed, Rng, RunOpts, Status};

fn make_executable(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn dbirun_on(path: &Path) -> Observed {
    run_dbirun(&[], path, &[], &RunOpts::new())
        .unwrap_or_else(|f| panic!("dbirun on {}: {f}", path.display()))
}

/// The common expectations; returns the stderr line.
fn expect_refusal(path: &Path, code: i32) -> String {
    let o = dbirun_on(path);
    let err = o.stderr_str();
    assert!(
        !o.status.is_signal(),
        "dbirun on {} {} (must exit, not crash); stderr: {err:?}",
        path.display(),
        o.status
    );
    assert_eq!(
        o.status,
        Status::Code(code),
        "dbirun on {}: wrong exit status; stderr: {err:?}",
        path.display()
    );
    assert!(
        o.stdout.is_empty(),
        "dbirun on {} printed on stdout: {:?}",
        path.display(),
        o.stdout_str()
    );
    let line = err.strip_suffix('\n').unwrap_or(&err);
    assert!(
        !line.trim().is_empty(),
        "dbirun on {}: no message on stderr",
        path.display()
    );
    assert!(
        !line.contains('\n'),
        "dbirun on {}: expected a single line on stderr, got:\n{err}",
        path.display()
    );
    let name = path.file_name().unwrap().to_string_lossy();
    assert!(
        line.contains(&*name),
        "dbirun on {}: the message does not name the file: {line:?}",
        path.display()
    );
    line.to_owned()
}

#[test]
fn random_bytes_not_elf() {
    let tmp = temp_dir("bad-random");
    let path = tmp.path().join("random-bytes.bin");
    let mut rng = Rng::new(11);
    let mut bytes: Vec<u8> = (0..4096).map(|_| rng.next_u64() as u8).collect();
    bytes[0] = b'Z'; // neither "#!" nor "\x7fELF"
    make_executable(&path, &bytes);
    expect_refusal(&path, 126);
}

#[test]
fn empty_file() {
    let tmp = temp_dir("bad-empty");
    let path = tmp.path().join("empty-file");
    make_executable(&path, b"");
    expect_refusal(&path, 126);
}

#[test]
fn truncated_elf() {
    let tmp = temp_dir("bad-truncated");
    let path = tmp.path().join("truncated-true");
    let full = std::fs::read("/bin/true").expect("/bin/true");
    assert_eq!(&full[..4], b"\x7fELF");
    make_executable(&path, &full[..100]);
    expect_refusal(&path, 126);
}

#[test]
fn directory() {
    let tmp = temp_dir("bad-dir");
    let path = tmp.path().join("a-directory");
    std::fs::create_dir(&path).unwrap();
    expect_refusal(&path, 126);
}

#[test]
fn missing_file() {
    let tmp = temp_dir("bad-missing");
    let path = tmp.path().join("no-such-program");
    expect_refusal(&path, 127);
}

#[test]
fn not_executable() {
    let tmp = temp_dir("bad-noexec");
    let path = tmp.path().join("not-executable");
    std::fs::copy("/bin/true", &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    expect_refusal(&path, 126);
}

/// A minimal valid i386 executable: a 52-byte Elf32_Ehdr (EI_CLASS = 1,
/// e_machine = 3), one PT_LOAD program header, and `exit(0)` by int 0x80.
fn elf32_exit0() -> Vec<u8> {
    const BASE: u32 = 0x0804_8000;
    let code: &[u8] = &[0x31, 0xdb, 0xb8, 0x01, 0x00, 0x00, 0x00, 0xcd, 0x80]; // xor ebx,ebx; mov eax,1; int 0x80
    let entry = BASE + 52 + 32;
    let total = (52 + 32 + code.len()) as u32;
    let mut v = Vec::new();
    v.extend_from_slice(b"\x7fELF");
    v.extend_from_slice(&[1, 1, 1, 0]); // ELFCLASS32, little endian, version 1, SYSV ABI
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&2u16.to_le_bytes()); // e_type = ET_EXEC
    v.extend_from_slice(&3u16.to_le_bytes()); // e_machine = EM_386
    v.extend_from_slice(&1u32.to_le_bytes()); // e_version
    v.extend_from_slice(&entry.to_le_bytes()); // e_entry
    v.extend_from_slice(&52u32.to_le_bytes()); // e_phoff
    v.extend_from_slice(&0u32.to_le_bytes()); // e_shoff
    v.extend_from_slice(&0u32.to_le_bytes()); // e_flags
    v.extend_from_slice(&52u16.to_le_bytes()); // e_ehsize
    v.extend_from_slice(&32u16.to_le_bytes()); // e_phentsize
    v.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
    v.extend_from_slice(&40u16.to_le_bytes()); // e_shentsize
    v.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
    v.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
    assert_eq!(v.len(), 52);
    v.extend_from_slice(&1u32.to_le_bytes()); // p_type = PT_LOAD
    v.extend_from_slice(&0u32.to_le_bytes()); // p_offset
    v.extend_from_slice(&BASE.to_le_bytes()); // p_vaddr
    v.extend_from_slice(&BASE.to_le_bytes()); // p_paddr
    v.extend_from_slice(&total.to_le_bytes()); // p_filesz
    v.extend_from_slice(&total.to_le_bytes()); // p_memsz
    v.extend_from_slice(&5u32.to_le_bytes()); // p_flags = R | X
    v.extend_from_slice(&0x1000u32.to_le_bytes()); // p_align
    v.extend_from_slice(code);
    v
}

/// `gcc -m32` when the machine has 32-bit libraries, else the handmade ELF.
fn elf32(dir: &Path) -> PathBuf {
    let src = dir.join("m32.c");
    std::fs::write(&src, "int main(void) { return 0; }\n").unwrap();
    let out = dir.join("elf32-program");
    let built = std::process::Command::new("gcc")
        .args(["-m32", "-w", "-o"])
        .arg(&out)
        .arg(&src)
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !built {
        make_executable(&out, &elf32_exit0());
    }
    let head = std::fs::read(&out).unwrap();
    assert_eq!(&head[..5], b"\x7fELF\x01", "not a 32-bit ELF");
    out
}

#[test]
fn elf32_is_unsupported() {
    let tmp = temp_dir("bad-elf32");
    let path = elf32(tmp.path());
    let line = expect_refusal(&path, 126);
    let lower = line.to_lowercase();
    assert!(
        lower.contains("unsupported") || lower.contains("32-bit"),
        "the message for a 32-bit ELF should say \"unsupported\" or \"32-bit\": {line:?}"
    );
}

/// A relative path that does not exist is reported as not found, too.
#[test]
fn missing_relative_path() {
    let tmp = temp_dir("bad-missing-rel");
    let o = run_dbirun(
        &[],
        Path::new("./missing-relative-program"),
        &[],
        &RunOpts::new().cwd(tmp.path()),
    )
    .unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(o.status, Status::Code(127), "stderr: {:?}", o.stderr_str());
    assert!(
        o.stderr_str().contains("missing-relative-program"),
        "stderr: {:?}",
        o.stderr_str()
    );
}

/// A fault in the runtime's own code (injected while it builds a block,
/// holding the translator's lock) is the runtime's error, not the app's
/// death: one line naming the signal, the runtime pc, the address and the
/// app pc, and exit status 70; no hang on the held lock.
#[test]
fn runtime_fault_is_an_internal_error() {
    let opts = RunOpts::new().env("DBI_TEST_RUNTIME_FAULT", "1");
    let o = run_dbirun(&[], &dbi_tests::tool("true"), &[], &opts).unwrap_or_else(|f| panic!("dbirun true: {f}"));
    let err = o.stderr_str();
    assert_eq!(o.status, Status::Code(70), "stderr: {err:?}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {err:?}");
    let line = lines[0];
    assert!(
        line.starts_with("dbirun: internal error: SIGSEGV at runtime pc 0x") && line.contains(" address 0x10 (app pc 0x"),
        "{line:?}"
    );
    assert!(o.stdout.is_empty());
}

/// A fault in cache code that no block answers for is the runtime's error
/// too, not a death by the app's signal: here the blocks a flush retired
/// are made to answer for nothing (`DBI_TEST_FORGET_RETIRED`), and the
/// program faults in the block whose own write flushed it
/// (`fault_after_flush.c`, whose handler then never runs).
#[test]
fn fault_in_cache_code_no_block_answers_for_is_an_internal_error() {
    let exe = dbi_tests::compiled(
        &dbi_tests::programs_dir().join("fault_after_flush.c"),
        dbi_tests::Build::new(dbi_tests::Variant::Pie, dbi_tests::Opt::O2),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let opts = RunOpts::new().env("DBI_TEST_FORGET_RETIRED", "1");
    let o = run_dbirun(&[], &exe, &[], &opts).unwrap_or_else(|f| panic!("dbirun fault_after_flush: {f}"));
    let err = o.stderr_str();
    assert_eq!(o.status, Status::Code(70), "stderr: {err:?}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {err:?}");
    assert!(
        lines[0].starts_with("dbirun: internal error: SIGSEGV at code cache pc 0x") && lines[0].contains(" (app pc 0x"),
        "{:?}",
        lines[0]
    );
}

/// `-logdir` that cannot take client files is an option error before the
/// app runs (one line, status 2); a directory that goes away during the
/// run costs one warning line, and the app's output and status stay.
#[test]
fn logdir_that_cannot_take_files() {
    let tmp_dir = temp_dir("logdir");
    let tmp = tmp_dir.path();
    let marker = tmp.join("ran");
    let touch = ["-c", "echo x > \"$1\"", "sh"];
    let file = tmp.join("a-file");
    std::fs::write(&file, "").unwrap();
    for (dir, why) in [(tmp.join("missing/dir"), "no such directory"), (file.clone(), "not a directory")] {
        let mut args = touch.to_vec();
        let marker_s = marker.to_str().unwrap();
        args.push(marker_s);
        let d = dir.to_str().unwrap();
        let o = run_dbirun(&["-logdir", d, "-c", "bbcount"], Path::new("/bin/sh"), &args, &RunOpts::new())
            .unwrap_or_else(|f| panic!("{f}"));
        let err = o.stderr_str();
        assert_eq!(o.status, Status::Code(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("dbirun: -logdir ") && err.contains(why), "{err}");
        assert!(!marker.exists(), "the app must not run");
    }

    // The directory is removed by the app itself: bbcount writes at exit.
    let gone = tmp.join("gone");
    std::fs::create_dir(&gone).unwrap();
    let g = gone.to_str().unwrap();
    let o = run_dbirun(&["-logdir", g, "-c", "bbcount"], Path::new("/bin/sh"), &["-c", "rmdir \"$1\"; echo out; exit 3", "sh", g], &RunOpts::new())
        .unwrap_or_else(|f| panic!("{f}"));
    let err = o.stderr_str();
    assert_eq!(o.status, Status::Code(3), "{err}");
    assert_eq!(o.stdout_str(), "out\n");
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("cannot write")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].starts_with("dbirun: warning: bbcount: cannot write ") && warnings[0].contains(g), "{err}");
}
