//! Real programs from the machine, native vs `dbirun -no_native_exec`:
//! coreutils, python3 and perl, on data generated in each test's own temp dir.

use std::io::Write;
use std::path::{Path, PathBuf};

use dbi_tests::{assert_same_as_native, run_dbirun, run_native, temp_dir, tool, Rng, RunOpts, Status};

/// A fixed locale and time zone so both runs format the same way.
fn c_locale() -> RunOpts {
    RunOpts::new().env("LC_ALL", "C").env("TZ", "UTC")
}

#[test]
fn bin_true() {
    let o = assert_same_as_native(Path::new("/bin/true"), &[], &RunOpts::new());
    assert_eq!(o.status, Status::Code(0));
}

#[test]
fn bin_false() {
    let o = assert_same_as_native(Path::new("/bin/false"), &[], &RunOpts::new());
    assert_eq!(o.status, Status::Code(1));
}

#[test]
fn echo_hello_world() {
    let o = assert_same_as_native(Path::new("/bin/echo"), &["hello", "world"], &RunOpts::new());
    assert_eq!(o.stdout, b"hello world\n");
}

#[test]
fn ls_la_usr_bin() {
    let o = assert_same_as_native(&tool("ls"), &["-la", "/usr/bin"], &c_locale());
    assert_eq!(o.status, Status::Code(0));
    assert!(o.stdout.len() > 1000, "ls printed too little");
}

#[test]
fn ls_missing_file_fails_the_same() {
    let tmp = temp_dir("ls-missing");
    let missing = tmp.path().join("no-such-file");
    let o = assert_same_as_native(&tool("ls"), &[missing.to_str().unwrap()], &c_locale());
    assert_eq!(o.status, Status::Code(2));
}

fn text_file(dir: &Path, name: &str, lines: usize, seed: u64) -> PathBuf {
    let path = dir.join(name);
    let mut rng = Rng::new(seed);
    let mut w = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    const WORDS: &[&str] = &[
        "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "Iota", "kappa",
    ];
    for i in 0..lines {
        let n = rng.next_u64();
        writeln!(
            w,
            "{} {:016x} {} {}",
            WORDS[(n % 10) as usize],
            n,
            i,
            WORDS[(n >> 8) as usize % 10]
        )
        .unwrap();
    }
    w.flush().unwrap();
    path
}

#[test]
fn cat_generated_file() {
    let tmp = temp_dir("cat");
    let f = text_file(tmp.path(), "input.txt", 50_000, 1);
    let o = assert_same_as_native(
        &tool("cat"),
        &[f.to_str().unwrap()],
        &c_locale().cwd(tmp.path()),
    );
    assert_eq!(o.stdout, std::fs::read(&f).unwrap());
}

#[test]
fn cat_from_stdin() {
    let tmp = temp_dir("cat-stdin");
    let f = text_file(tmp.path(), "input.txt", 5_000, 2);
    let o = assert_same_as_native(&tool("cat"), &[], &c_locale().stdin(&f));
    assert_eq!(o.stdout, std::fs::read(&f).unwrap());
}

#[test]
fn sort_100k_lines() {
    let tmp = temp_dir("sort");
    let f = text_file(tmp.path(), "input.txt", 100_000, 3);
    let o = assert_same_as_native(
        &tool("sort"),
        &[f.to_str().unwrap()],
        &c_locale().cwd(tmp.path()),
    );
    assert_eq!(o.status, Status::Code(0));
    assert_eq!(o.stdout.iter().filter(|&&c| c == b'\n').count(), 100_000);
    // Numeric sort on the third field, in reverse, unique keys.
    assert_same_as_native(
        &tool("sort"),
        &["-k3,3nr", "-u", f.to_str().unwrap()],
        &c_locale().cwd(tmp.path()),
    );
}

#[test]
fn sha256sum_20mb() {
    let tmp = temp_dir("sha256");
    let path = tmp.path().join("data.bin");
    let mut rng = Rng::new(4);
    let mut data = Vec::with_capacity(20 << 20);
    while data.len() < 20 << 20 {
        data.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    std::fs::write(&path, &data).unwrap();
    let o = assert_same_as_native(
        &tool("sha256sum"),
        &["data.bin"],
        &c_locale().cwd(tmp.path()),
    );
    assert!(
        o.stdout.ends_with(b"  data.bin\n"),
        "unexpected sha256sum output: {}",
        o.stdout_str()
    );
}

#[test]
fn wc_and_md5sum() {
    let tmp = temp_dir("wc");
    let f = text_file(tmp.path(), "input.txt", 20_000, 5);
    assert_same_as_native(&tool("wc"), &["input.txt"], &c_locale().cwd(tmp.path()));
    assert_same_as_native(&tool("md5sum"), &["input.txt"], &c_locale().cwd(tmp.path()));
    drop(f);
}

const PYTHON: &str = "/usr/bin/python3";
const PERL: &str = "/usr/bin/perl";

/// C locale, a fixed hash seed (set and dict ordering of str keys), no .pyc
/// writes into the system's directories.
fn python_opts(dir: &Path) -> RunOpts {
    c_locale()
        .cwd(dir)
        .env("PYTHONHASHSEED", "0")
        .env("PYTHONDONTWRITEBYTECODE", "1")
}

#[test]
fn python3_json_hashlib_re() {
    let tmp = temp_dir("python");
    let code = r#"import json,hashlib,re
print(json.dumps({"a":[1,2]}))
print(hashlib.sha256(b"abc").hexdigest())
print(re.findall(r"\d+", "a1b22c333"))
d = {str(i): [i, i * i, {"k": "v" * (i % 5)}] for i in range(2000)}
s = json.dumps(d, sort_keys=True)
print(len(s), hashlib.md5(s.encode()).hexdigest())
print(json.loads(s)["1999"])
print(sum(int(x) for x in re.findall(r"\d+", s)) % 1000003)
print(sorted(set("the quick brown fox jumps over the lazy dog")))
"#;
    let o = assert_same_as_native(Path::new(PYTHON), &["-c", code], &python_opts(tmp.path()));
    let out = o.stdout_str();
    assert!(out.starts_with(
        "{\"a\": [1, 2]}\nba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n['1', '22', '333']\n"
    ));
}

#[test]
fn python3_exception_exit_status() {
    let tmp = temp_dir("python-exc");
    let o = assert_same_as_native(
        Path::new(PYTHON),
        &[
            "-c",
            "import sys\nprint('before')\nsys.stdout.flush()\nraise ValueError('boom')",
        ],
        &python_opts(tmp.path()),
    );
    assert_eq!(o.status, Status::Code(1));
}

/// The acceptance check, exactly: `dbirun -- /usr/bin/python3 -c '...'`
/// (default options) prints what python prints natively.
#[test]
fn acceptance_python_json() {
    let prog = Path::new(PYTHON);
    let args = ["-c", r#"import json; print(json.dumps({"a": [1, 2]}))"#];
    let opts = RunOpts::new();
    let native =
        run_native(prog, &args, &opts).unwrap_or_else(|f| panic!("native python failed: {f}"));
    assert_eq!(native.stdout, b"{\"a\": [1, 2]}\n");
    assert_eq!(native.status, Status::Code(0));
    let translated = run_dbirun(&[], prog, &args, &opts).unwrap_or_else(|f| panic!("{f}"));
    if let Err(e) =
        dbi_tests::compare_observed("dbirun -- /usr/bin/python3 -c ...", &native, &translated)
    {
        panic!("{e}");
    }
}

#[test]
fn perl_strings_and_hashes() {
    let tmp = temp_dir("perl");
    let code = r#"
use strict; use warnings;
my %h;
for my $i (1..20000) { my $k = "key" . ($i % 997); $h{$k} += $i; }
my @top = (sort { $h{$b} <=> $h{$a} or $a cmp $b } keys %h)[0..4];
print join(",", map { "$_=$h{$_}" } @top), "\n";
my $s = join("", map { chr(97 + ($_ * 7) % 26) } 0..9999);
(my $t = $s) =~ s/([aeiou])/uc $1/ge;
my @m = ($t =~ /([A-Z][a-z]{3})/g);
printf "%d %d %s\n", length($t), scalar(@m), substr($t, 100, 20);
print scalar(reverse("hello, world")), " ", lc("MiXeD"), " ", sprintf("%.3f", 22/7), "\n";
my @sorted = sort { $a <=> $b } map { ($_ * 7919) % 10007 } 1..5000;
print "@sorted[0..9]\n";
"#;
    let o = assert_same_as_native(Path::new(PERL), &["-e", code], &c_locale().cwd(tmp.path()));
    assert_eq!(o.status, Status::Code(0));
}

#[test]
fn perl_die_exit_status() {
    let tmp = temp_dir("perl-die");
    let o = assert_same_as_native(
        Path::new(PERL),
        &["-e", "print qq(x\\n); die qq(fatal\\n)"],
        &c_locale().cwd(tmp.path()),
    );
    assert_eq!(o.status, Status::Code(255));
    assert_eq!(o.stderr, b"fatal\n");
}
