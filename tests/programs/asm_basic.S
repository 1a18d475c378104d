// dbi-cflags: -nostdlib
/* No libc: _start, raw write/exit system calls, loops, call/ret, an indirect
 * jmp through a table of relative offsets, loop, jrcxz, rep movsb (forwards
 * and, with DF set, backwards), push/pop of RIP-relative memory operands,
 * RIP-relative lea, call through memory, ret imm16, the values syscall leaves
 * in rcx/r11. Position independent without relocations, so it also links as
 * a static PIE. Each check appends '1' (pass) or '0' to a result line;
 * the exit status is the low byte of a checksum of every computed value. */

        .section .rodata
msg_start:
        .ascii "asm_basic: start\n"
        .set msg_start_len, . - msg_start
msg_results:
        .ascii "checks: "
        .set msg_results_len, . - msg_results
msg_checksum:
        .ascii "checksum: 0x"
        .set msg_checksum_len, . - msg_checksum
text40:
        .ascii "The quick brown fox jumps over the dog.\n"
        .set text40_len, . - text40
hexdigits:
        .ascii "0123456789abcdef"

        .data
        .balign 8
pushed_value:
        .quad 0x1122334455667788
popped_value:
        .quad 0
fnptr:
        .quad 0
counter:
        .quad 0

        .bss
        .balign 16
results:
        .skip 64
copybuf:
        .skip 128
hexbuf:
        .skip 32

        .text
        .globl _start
        .type _start, @function
_start:
        xor %r15d, %r15d                # checksum
        xor %r14d, %r14d                # number of results written
        and $-16, %rsp

        /* write(1, msg_start) and what syscall leaves in rcx (next rip) and r11 (rflags). */
        lea .Lafter_write(%rip), %r8
        mov $1, %eax
        mov $1, %edi
        lea msg_start(%rip), %rsi
        mov $msg_start_len, %edx
        syscall
.Lafter_write:
        mov %rax, %rdi
        call mix                        # bytes written: 17
        xor %edi, %edi
        cmp %rcx, %r8
        sete %dil
        call check                      # rcx == address after syscall
        mov %r11, %rdi
        and $0x2, %edi                  # bit 1 of rflags is always set
        shr $1, %edi
        call check

        /* 1. a counted loop: sum 1..100 */
        xor %eax, %eax
        mov $100, %ecx
1:      add %rcx, %rax
        dec %ecx
        jnz 1b
        mov %rax, %rdi
        call mix
        xor %edi, %edi
        cmp $5050, %rax
        sete %dil
        call check

        /* 2. call/ret, nested */
        mov $12, %edi
        call square_plus_cube
        mov %rax, %rdi
        call mix
        xor %edi, %edi
        cmp $(144 + 1728), %rax
        sete %dil
        call check

        /* 3. indirect jmp through a table of relative offsets; CF set just
         * before the jmp must reach the target (adc counts it). */
        xor %ebx, %ebx                  # sum of case values
        xor %r12d, %r12d                # carries seen
        xor %r13d, %r13d                # index
.Ldispatch:
        cmp $5, %r13
        jae .Ldispatch_done
        lea jump_table(%rip), %rdx
        movslq (%rdx,%r13,4), %rax
        add %rdx, %rax
        stc
        jmp *%rax
.Lcase0:
        adc $0, %r12
        add $1, %rbx
        jmp .Lcase_join
.Lcase1:
        adc $0, %r12
        add $20, %rbx
        jmp .Lcase_join
.Lcase2:
        adc $0, %r12
        add $300, %rbx
        jmp .Lcase_join
.Lcase3:
        adc $0, %r12
        add $4000, %rbx
        jmp .Lcase_join
.Lcase4:
        adc $0, %r12
        add $50000, %rbx
.Lcase_join:
        inc %r13
        jmp .Ldispatch
.Ldispatch_done:
        mov %rbx, %rdi
        call mix
        xor %edi, %edi
        cmp $54321, %rbx
        sete %dil
        call check
        xor %edi, %edi
        cmp $5, %r12
        sete %dil
        call check

        /* 4. the loop instruction */
        xor %eax, %eax
        mov $10, %ecx
2:      add %rcx, %rax
        loop 2b
        mov %rax, %rdi
        call mix
        xor %edi, %edi
        cmp $55, %rax
        sete %dil
        test %rcx, %rcx
        jnz 3f
        call check
        jmp 4f
3:      xor %edi, %edi
        call check
4:
        /* 5. jrcxz: taken with rcx == 0, not taken with rcx == 1 */
        xor %ebx, %ebx
        xor %ecx, %ecx
        jrcxz 5f
        jmp 6f
5:      or $1, %ebx
6:      mov $1, %ecx
        jrcxz 7f
        or $2, %ebx
7:      mov %rbx, %rdi
        call mix
        xor %edi, %edi
        cmp $3, %ebx
        sete %dil
        call check

        /* 6. rep movsb forwards, then repe cmpsb */
        lea text40(%rip), %rsi
        lea copybuf(%rip), %rdi
        mov $text40_len, %ecx
        rep movsb
        lea text40(%rip), %rsi
        lea copybuf(%rip), %rdi
        mov $text40_len, %ecx
        repe cmpsb
        sete %dil
        movzbl %dil, %edi
        call check
        lea copybuf(%rip), %rsi
        xor %eax, %eax
        mov $text40_len, %ecx
8:      movzbq (%rsi), %rdx
        imul $31, %rax
        add %rdx, %rax
        inc %rsi
        dec %ecx
        jnz 8b
        mov %rax, %rdi
        call mix

        /* 7. rep movsb backwards (DF=1) on an overlapping range: shift right by 8 */
        std
        lea copybuf+text40_len-1(%rip), %rsi
        lea copybuf+text40_len+7(%rip), %rdi
        mov $text40_len, %ecx
        rep movsb
        cld
        lea copybuf+8(%rip), %rsi
        lea text40(%rip), %rdi
        mov $text40_len, %ecx
        repe cmpsb
        sete %dil
        movzbl %dil, %edi
        call check
        pushf
        pop %rax
        shr $10, %eax                   # DF is clear again
        and $1, %eax
        xor $1, %eax
        mov %eax, %edi
        call check

        /* 8. push/pop with RIP-relative memory operands */
        pushq pushed_value(%rip)
        popq popped_value(%rip)
        mov popped_value(%rip), %rax
        mov %rax, %rdi
        call mix
        movabs $0x1122334455667788, %rdx
        xor %edi, %edi
        cmp %rdx, %rax
        sete %dil
        call check

        /* 9. RIP-relative lea equals the pc pushed by a call */
        call 9f
9:      pop %rax
        lea 9b(%rip), %rdx
        xor %edi, %edi
        cmp %rax, %rdx
        sete %dil
        call check

        /* 10. call through memory (pointer stored at run time: no relocation) */
        lea square_plus_cube(%rip), %rax
        mov %rax, fnptr(%rip)
        mov $3, %edi
        call *fnptr(%rip)
        mov %rax, %rdi
        call mix
        xor %edi, %edi
        cmp $36, %rax
        sete %dil
        call check
        /* and through a register */
        lea square_plus_cube(%rip), %rdx
        mov $2, %edi
        call *%rdx
        xor %edi, %edi
        cmp $12, %rax
        sete %dil
        call check

        /* 11. ret $8 pops an argument pushed by the caller */
        mov %rsp, %rbx
        pushq $77
        call ret_imm
        xor %edi, %edi
        cmp %rsp, %rbx
        sete %dil
        cmp $77, %rax
        je 10f
        xor %edi, %edi
10:     call check

        /* 12. the return address on the stack is the application's */
        call read_return_address
.Lreturned_here:
        lea .Lreturned_here(%rip), %rdx
        xor %edi, %edi
        cmp %rax, %rdx
        sete %dil
        call check

        /* 13. flags and conditional moves, carry chains, bit scans */
        mov $-1, %rax
        mov $1, %rdx
        add %rdx, %rax                  # CF=1, ZF=1
        mov $0, %rcx
        adc $0, %rcx                    # rcx = 1
        mov $111, %r8
        mov $222, %r9
        cmovz %r9, %r8                  # ZF still set by add? adc cleared it: rcx=1 -> ZF=0
        mov %r8, %rdi
        call mix
        mov $0x80, %eax
        bsf %eax, %edx                  # 7
        bswap %edx                      # 0x07000000
        mov %rdx, %rdi
        call mix
        mov $5, %eax
        mov $9, %ecx
        xchg %eax, %ecx
        lock xadd %eax, counter(%rip)   # counter = 9, eax = 0
        mov $9, %eax
        mov $42, %ecx
        lock cmpxchg %rcx, counter(%rip) # counter == 9 -> 42
        mov counter(%rip), %rdi
        call mix
        xor %edi, %edi
        cmpq $42, counter(%rip)
        sete %dil
        call check
        mov $1000003, %eax
        xor %edx, %edx
        mov $97, %ecx
        div %rcx
        mov %rdx, %rdi
        call mix

        /* print the results and the checksum */
        mov $1, %eax
        mov $1, %edi
        lea msg_results(%rip), %rsi
        mov $msg_results_len, %edx
        syscall
        lea results(%rip), %rsi
        movb $'\n', (%rsi,%r14)
        lea 1(%r14), %rdx
        mov $1, %eax
        mov $1, %edi
        syscall
        mov $1, %eax
        mov $1, %edi
        lea msg_checksum(%rip), %rsi
        mov $msg_checksum_len, %edx
        syscall
        mov %r15, %rdi
        call print_hex

        /* a failed check makes the status 1; otherwise the checksum's low byte */
        lea results(%rip), %rdi
        mov %r14, %rcx
        mov $'0', %al
        repne scasb
        je .Lfailed
        movzbl %r15b, %edi
        jmp .Lexit
.Lfailed:
        mov $1, %edi
.Lexit:
        mov $60, %eax
        syscall
        hlt
        .size _start, .-_start

        .section .rodata
        .balign 4
jump_table:
        .long .Lcase0 - jump_table
        .long .Lcase1 - jump_table
        .long .Lcase2 - jump_table
        .long .Lcase3 - jump_table
        .long .Lcase4 - jump_table
        .text

/* rax = rdi*rdi + rdi*rdi*rdi, through a nested call */
        .type square_plus_cube, @function
square_plus_cube:
        push %rbx
        mov %rdi, %rbx
        call square
        mov %rax, %rsi
        imul %rbx, %rax
        add %rsi, %rax
        pop %rbx
        ret
        .size square_plus_cube, .-square_plus_cube

        .type square, @function
square:
        mov %rdi, %rax
        imul %rdi, %rax
        ret
        .size square, .-square

        .type ret_imm, @function
ret_imm:
        mov 8(%rsp), %rax
        ret $8
        .size ret_imm, .-ret_imm

        .type read_return_address, @function
read_return_address:
        mov (%rsp), %rax
        ret
        .size read_return_address, .-read_return_address

/* r15 = r15 * 31 + rdi (rotated), keeps everything else but rax/rdx */
        .type mix, @function
mix:
        imul $31, %r15, %r15
        add %rdi, %r15
        rol $7, %r15
        ret
        .size mix, .-mix

/* results[r14++] = edi ? '1' : '0'; mixes it in */
        .type check, @function
check:
        push %rax
        push %rdx
        lea results(%rip), %rdx
        test %edi, %edi
        mov $'0', %eax
        jz 1f
        mov $'1', %eax
1:      mov %al, (%rdx,%r14)
        inc %r14
        movzbl %al, %edi
        call mix
        pop %rdx
        pop %rax
        ret
        .size check, .-check

/* print rdi as 16 hex digits and a newline */
        .type print_hex, @function
print_hex:
        lea hexbuf(%rip), %rsi
        lea hexdigits(%rip), %r8
        mov $16, %ecx
1:      mov %rdi, %rax
        shr $60, %rax
        movzbl (%r8,%rax), %eax
        mov %al, (%rsi)
        inc %rsi
        shl $4, %rdi
        loop 1b
        movb $'\n', (%rsi)
        mov $1, %eax
        mov $1, %edi
        lea hexbuf(%rip), %rsi
        mov $17, %edx
        syscall
        ret
        .size print_hex, .-print_hex

        .section .note.GNU-stack, "", @progbits
