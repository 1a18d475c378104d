//! The modules a program loads before it runs: the program, its ELF
//! interpreter, and its DT_NEEDED libraries, transitively, found where the
//! dynamic linker looks (RUNPATH/RPATH with `$ORIGIN`, `LD_LIBRARY_PATH`,
//! then the system directories). For commands that fetch or list a
//! program's caches without running it; libraries it opens later with
//! `dlopen` are not found this way and are named on their own.

use std::path::{Path, PathBuf};

const SYSTEM_DIRS: &[&str] = &["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib"];

/// `program` and the modules it loads at start, each once, in the order
/// found; an unreadable or non-ELF program is an error, a library not
/// found is left out.
pub fn of(program: &Path) -> Result<Vec<PathBuf>, String> {
    let mut found = vec![program.to_path_buf()];
    let mut next = 0;
    while next < found.len() {
        let path = found[next].clone();
        next += 1;
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if next == 1 => return Err(format!("{}: {e}", path.display())),
            Err(_) => continue,
        };
        let elf = match goblin::elf::Elf::parse(&bytes) {
            Ok(elf) => elf,
            Err(e) if next == 1 => return Err(format!("{}: not an ELF file ({e})", path.display())),
            Err(_) => continue,
        };
        let origin = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        let mut search: Vec<PathBuf> = Vec::new();
        for list in elf.runpaths.iter().chain(&elf.rpaths) {
            search.extend(list.split(':').filter(|d| !d.is_empty()).map(|d| PathBuf::from(d.replace("$ORIGIN", &origin.to_string_lossy()))));
        }
        if let Ok(ld) = std::env::var("LD_LIBRARY_PATH") {
            search.extend(ld.split(':').filter(|d| !d.is_empty()).map(PathBuf::from));
        }
        search.extend(SYSTEM_DIRS.iter().map(PathBuf::from));
        let mut wanted: Vec<PathBuf> = elf.interpreter.map(PathBuf::from).into_iter().collect();
        for lib in &elf.libraries {
            let lib = Path::new(lib);
            if lib.is_absolute() {
                wanted.push(lib.to_path_buf());
            } else if let Some(p) = search.iter().map(|d| d.join(lib)).find(|p| is_x86_64_elf(p)) {
                wanted.push(p);
            }
        }
        for w in wanted {
            let canon = std::fs::canonicalize(&w).unwrap_or(w);
            if !found.iter().any(|f| std::fs::canonicalize(f).map_or(*f == canon, |c| c == canon)) {
                found.push(canon);
            }
        }
    }
    Ok(found)
}

fn is_x86_64_elf(path: &Path) -> bool {
    let mut head = [0u8; 20];
    std::fs::File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head)).is_ok()
        && head[..4] == *b"\x7fELF"
        && head[4] == 2
        && u16::from_le_bytes([head[18], head[19]]) == 62
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_dynamic_program_brings_its_interpreter_and_libc() {
        let found = super::of(std::path::Path::new("/bin/ls")).unwrap();
        let names: Vec<String> = found.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names[0], "ls");
        assert!(names.iter().any(|n| n.starts_with("ld-linux-x86-64")), "{names:?}");
        assert!(names.iter().any(|n| n == "libc.so.6"), "{names:?}");
        assert!(super::of(std::path::Path::new("/etc/passwd")).unwrap_err().contains("not an ELF"));
        assert!(super::of(std::path::Path::new("/nonexistent")).is_err());
    }
}
