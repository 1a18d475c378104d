//! The runtime's own machine code uses no AVX: a cache exit saves only
//! xmm0-15 and MXCSR of the app's extended state and leaves the rest (the
//! upper halves of ymm0-15, zmm16-31, the mask registers, x87) in the CPU
//! while runtime code runs (`ThreadContext::save_whole_xstate`). A VEX- or
//! EVEX-encoded instruction in it would overwrite app state; this decodes
//! the built runtime's code and finds none.
//!
//! blake3's AVX2 and AVX-512 routines are linked in but never called: the
//! runtime turns them off with blake3's `no_avx2` and `no_avx512` features
//! (`runtime/Cargo.toml`), and `tests/programs/vector_state.c` checks the
//! state end to end.

use std::path::PathBuf;

use goblin::elf::{sym::{STT_FUNC, STT_NOTYPE}, Elf};
use iced_x86::{Code, Decoder, DecoderOptions, EncodingKind, Instruction, OpKind};

/// `$DBI_RUNTIME`, else the runtime dbirun finds beside itself or in the
/// build tree (`inject/src/runtime_path.rs`).
fn runtime_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("DBI_RUNTIME").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let dbirun = dbi_tests::dbirun_path();
    let dir = dbirun.parent().unwrap();
    [dir.join("dbi-runtime"), dir.join("runtime-target/release/dbi-runtime"), dir.join("runtime-target/debug/dbi-runtime")]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no dbi-runtime beside {} nor in its runtime-target", dbirun.display()))
}

/// blake3's assembly for AVX2 and AVX-512, which its features keep uncalled.
fn allowed(name: &str) -> bool {
    name.trim_start_matches('_').starts_with("blake3_") && (name.ends_with("_avx2") || name.ends_with("_avx512"))
}

/// A VEX, EVEX or XOP instruction that reads or writes vector or mask
/// registers (VEX-encoded BMI instructions on general registers, as the
/// lookup routine's `pext`, leave the extended state alone).
fn touches_vector_state(instr: &Instruction) -> bool {
    if instr.encoding() == EncodingKind::Legacy || instr.is_invalid() {
        return false;
    }
    matches!(instr.code(), Code::VEX_Vzeroupper | Code::VEX_Vzeroall)
        || instr.encoding() != EncodingKind::VEX
        || (0..instr.op_count()).any(|i| instr.op_kind(i) == OpKind::Register && !instr.op_register(i).is_gpr())
}

#[test]
fn runtime_code_has_no_vex_or_evex_instructions() {
    let path = runtime_binary();
    let bytes = std::fs::read(&path).unwrap();
    let elf = Elf::parse(&bytes).unwrap();
    // Every symbol naming code, by address: an instruction belongs to the
    // last one at or before it (assembly routines carry no size).
    let mut symbols: Vec<(u64, &str)> = elf
        .syms
        .iter()
        .filter(|s| s.st_value != 0 && matches!(s.st_type(), STT_FUNC | STT_NOTYPE))
        .filter_map(|s| Some((s.st_value, elf.strtab.get_at(s.st_name)?)))
        .collect();
    symbols.sort_unstable();
    let owner = |ip: u64| symbols.partition_point(|&(a, _)| a <= ip).checked_sub(1).map_or("?", |i| symbols[i].1);
    let (mut sections, mut instructions) = (0, 0);
    let mut found = Vec::new();
    for sh in elf.section_headers.iter().filter(|sh| sh.is_executable() && sh.sh_type == goblin::elf::section_header::SHT_PROGBITS) {
        sections += 1;
        let code = &bytes[sh.sh_offset as usize..(sh.sh_offset + sh.sh_size) as usize];
        let mut decoder = Decoder::with_ip(64, code, sh.sh_addr, DecoderOptions::NONE);
        for instr in &mut decoder {
            instructions += 1;
            if touches_vector_state(&instr) && !allowed(owner(instr.ip())) {
                found.push(format!("{} at {:#x}: {:?}", owner(instr.ip()), instr.ip(), instr.code()));
            }
        }
    }
    assert!(sections > 0 && instructions > 100_000, "decoded {instructions} instructions in {sections} sections of {}", path.display());
    assert!(found.is_empty(), "{} VEX/EVEX/XOP instructions in {}:\n{}", found.len(), path.display(), found.join("\n"));
}
