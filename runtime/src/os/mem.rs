//! `memcpy`, `memmove`, `memset`, `memcmp`, `bcmp`, `strlen`: the symbols compiled Rust
//! code calls, which the precompiled compiler_builtins does not export for a
//! libc-free binary. Written in assembly so LLVM cannot turn them into calls to
//! themselves.

// The copies, under names of their own so the host tests can check them
// against libc's.
core::arch::global_asm!(
    ".globl dbi_memcpy",
    ".type dbi_memcpy,@function",
    "dbi_memcpy:",
    "    mov rax, rdi",
    // Up to 256 bytes (a block's code, its stubs, a lookup's copy: most
    // of a cold run's copies) in 16-byte moves, the last one overlapping
    // the one before: `rep movsb` took 5% of a cold run there.
    "    cmp rdx, 16",
    "    jb 20f",
    "    cmp rdx, 256",
    "    ja 8f",
    "    movdqu xmm1, xmmword ptr [rsi + rdx - 16]",
    "    lea r8, [rdi + rdx - 16]",
    "    mov rcx, rdi",
    "21:",
    "    movdqu xmm0, xmmword ptr [rsi]",
    "    movdqu xmmword ptr [rcx], xmm0",
    "    add rsi, 16",
    "    add rcx, 16",
    "    cmp rcx, r8",
    "    jb 21b",
    "    movdqu xmmword ptr [r8], xmm1",
    "    ret",
    // Under 16 bytes: two moves of the largest power of two that fits,
    // overlapping.
    "20:",
    "    cmp rdx, 8",
    "    jb 22f",
    "    mov rcx, qword ptr [rsi]",
    "    mov r8, qword ptr [rsi + rdx - 8]",
    "    mov qword ptr [rdi], rcx",
    "    mov qword ptr [rdi + rdx - 8], r8",
    "    ret",
    "22:",
    "    cmp rdx, 4",
    "    jb 23f",
    "    mov ecx, dword ptr [rsi]",
    "    mov r8d, dword ptr [rsi + rdx - 4]",
    "    mov dword ptr [rdi], ecx",
    "    mov dword ptr [rdi + rdx - 4], r8d",
    "    ret",
    "23:",
    "    test rdx, rdx",
    "    jz 10f",
    "    movzx ecx, byte ptr [rsi]",
    "    mov byte ptr [rdi], cl",
    "    cmp rdx, 1",
    "    je 10f",
    "    movzx ecx, word ptr [rsi + rdx - 2]",
    "    mov word ptr [rdi + rdx - 2], cx",
    "10:",
    "    ret",
    "8:",
    "    mov rcx, rdx",
    "    rep movsb",
    "    ret",
    ".globl dbi_memmove",
    ".type dbi_memmove,@function",
    "dbi_memmove:",
    "    mov rax, rdi",
    "    mov rcx, rdx",
    "    cmp rdi, rsi",
    "    jbe 2f",
    "    lea r8, [rsi + rdx]",
    "    cmp rdi, r8",
    "    jae 2f",
    // Overlapping with the destination above the source: copy backwards,
    // a word at a time (`std; rep movsb` moves a byte at a time: a Vec's
    // insert shifting its tail took 1.7% of a cold run).
    "3:",
    "    cmp rcx, 8",
    "    jb 4f",
    "    mov r8, qword ptr [rsi + rcx - 8]",
    "    mov qword ptr [rdi + rcx - 8], r8",
    "    sub rcx, 8",
    "    jmp 3b",
    "4:",
    "    test rcx, rcx",
    "    jz 5f",
    "    mov r8b, byte ptr [rsi + rcx - 1]",
    "    mov byte ptr [rdi + rcx - 1], r8b",
    "    dec rcx",
    "    jmp 4b",
    "5:",
    "    ret",
    "2:",
    "    rep movsb",
    "    ret",
);

// The host test harness gets these from libc.
#[cfg(not(test))]
core::arch::global_asm!(
    ".globl memcpy",
    ".type memcpy,@function",
    ".set memcpy, dbi_memcpy",
    ".globl memmove",
    ".type memmove,@function",
    ".set memmove, dbi_memmove",
    ".globl memset",
    ".type memset,@function",
    "memset:",
    "    mov r8, rdi",
    "    mov eax, esi",
    "    mov rcx, rdx",
    "    rep stosb",
    "    mov rax, r8",
    "    ret",
    ".globl memcmp",
    ".type memcmp,@function",
    ".globl bcmp",
    ".type bcmp,@function",
    "memcmp:",
    "bcmp:",
    "    xor eax, eax",
    "    test rdx, rdx",
    "    jz 4f",
    "3:",
    "    movzx eax, byte ptr [rdi]",
    "    movzx ecx, byte ptr [rsi]",
    "    sub eax, ecx",
    "    jnz 4f",
    "    inc rdi",
    "    inc rsi",
    "    dec rdx",
    "    jnz 3b",
    "4:",
    "    ret",
    ".globl strlen",
    ".type strlen,@function",
    "strlen:",
    "    mov rax, rdi",
    "5:",
    "    cmp byte ptr [rax], 0",
    "    je 6f",
    "    inc rax",
    "    jmp 5b",
    "6:",
    "    sub rax, rdi",
    "    ret",
);

#[cfg(test)]
mod tests {
    extern "C" {
        fn dbi_memcpy(dst: *mut u8, src: *const u8, len: usize) -> *mut u8;
        fn dbi_memmove(dst: *mut u8, src: *const u8, len: usize) -> *mut u8;
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
    }

    #[test]
    fn memcpy_copies_every_length_at_every_alignment_and_nothing_else() {
        for len in 0..600 {
            for (d, s) in [(0, 0), (1, 3), (7, 0), (0, 9), (15, 5)] {
                let src = pattern(len + 32, 1);
                let mut dst = vec![0xeeu8; len + 48];
                // SAFETY: both ranges lie inside their vectors and do not overlap.
                let r = unsafe { dbi_memcpy(dst.as_mut_ptr().add(d + 8), src.as_ptr().add(s), len) };
                assert_eq!(r, dst.as_mut_ptr().wrapping_add(d + 8), "returns the destination");
                assert_eq!(&dst[d + 8..d + 8 + len], &src[s..s + len], "len {len}, offsets {d} {s}");
                assert!(dst[..d + 8].iter().chain(&dst[d + 8 + len..]).all(|&b| b == 0xee), "wrote outside: len {len}");
            }
        }
    }

    #[test]
    fn memmove_copies_overlapping_ranges_either_way() {
        for len in 0..300 {
            for shift in [1usize, 2, 3, 7, 8, 9, 15, 16, 17, 64] {
                for forward in [false, true] {
                    let (from, to) = if forward { (8 + shift, 8) } else { (8, 8 + shift) };
                    let mut buf = pattern(len + shift + 16, 5);
                    let mut expect = buf.clone();
                    expect.copy_within(from..from + len, to);
                    let base = buf.as_mut_ptr();
                    // SAFETY: both ranges lie inside `buf`; memmove allows overlap.
                    let r = unsafe { dbi_memmove(base.add(to), base.add(from), len) };
                    assert_eq!(r, base.wrapping_add(to));
                    assert_eq!(buf, expect, "len {len}, shift {shift}, forward {forward}");
                }
            }
        }
    }
}
