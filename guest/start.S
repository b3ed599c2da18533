/*
 * Entry of the test guest, on every vCPU at once, in 64-bit mode with the
 * monitor's identity page tables:
 *   %rdi = GPA of the flattened device tree
 *   %rsi = this vCPU's index
 *   %rdx = number of vCPUs
 * Each vCPU gets its own stack and its own per-CPU block; %fs points at the
 * block so that the stack-protector canary (%fs:0x28) libfdt uses is there.
 */
#include "guest.h"

	.section .text.start, "ax"
	.globl _start
_start:
	cmp	$GUEST_MAX_CPUS, %rsi
	jae	1f
	mov	%rdi, %r12
	mov	%rsi, %r13
	mov	%rdx, %r14

	/* %rsp = guest_stacks + (index + 1) * GUEST_STACK_SIZE */
	lea	1(%rsi), %rax
	shl	$GUEST_STACK_SHIFT, %rax
	lea	guest_stacks(%rip), %rsp
	add	%rax, %rsp

	/* FS_BASE = &guest_percpu[index] */
	mov	%rsi, %rax
	shl	$GUEST_PERCPU_SHIFT, %rax
	lea	guest_percpu(%rip), %rdx
	add	%rdx, %rax
	mov	%rax, %rdx
	shr	$32, %rdx
	mov	$0xc0000100, %ecx
	wrmsr

	mov	%r12, %rdi
	mov	%r13, %rsi
	mov	%r14, %rdx
	call	guest_main
1:
	cli
	hlt
	jmp	1b
