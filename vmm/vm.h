/*
 * A microVM: the KVM VM, guest RAM, the port-I/O and MMIO buses with their
 * devices, the vCPUs, and the one place that decides how the VM stops.
 *
 * Lifecycle: vm__init() -> vm__load() -> vm__run() -> vm__exit().
 * Stopping: whichever thread first calls vm__stop() sets the exit status
 * and message; every vCPU is kicked out of KVM_RUN and vm__run() returns.
 */
#ifndef FAULTLINE_VM_H
#define FAULTLINE_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/bus.h"
#include "devices/exit_dev.h"
#include "devices/serial.h"
#include "mmu/mmu.h"
#include "vmm/cli.h"
#include "vmm/elf.h"
#include "vmm/kvm.h"

#define VM_STOP_MSG_LEN 512

struct vcpu;

struct vm {
	struct kvm kvm;
	struct mmu mmu; /* guest RAM; mmu.ram is its layout */
	enum cli_oom_policy on_oom;
	const char *backing_file;
	struct bus pio_bus;
	struct bus mmio_bus;
	struct serial serial;
	struct exit_dev exit_dev;
	unsigned nr_vcpus;
	struct vcpu *vcpus;

	pthread_mutex_t lock;	     /* protects everything below */
	pthread_cond_t stopped_cond; /* broadcast when stopping becomes true */
	bool stopping;
	int status;
	char stop_msg[VM_STOP_MSG_LEN];
	unsigned nr_halted;
	int stop_fd; /* eventfd, readable once stopping */
};

/*
 * Open KVM, create the VM, map RAM and register devices. Returns 0 or a
 * faultline exit status (FL_EXIT_*) after reporting what failed.
 */
int vm__init(struct vm *vm, const struct run_config *cfg) __attribute__((warn_unused_result));

/*
 * Copy the image into RAM, write boot structures and the device tree,
 * create the vCPUs. Returns 0 or an FL_EXIT_* status (reported).
 */
int vm__load(struct vm *vm, const struct run_config *cfg, const void *image,
	     const struct elf_image *img) __attribute__((warn_unused_result));

/*
 * Run the vCPUs until the VM stops or SIGINT/SIGTERM/SIGHUP arrives.
 * Returns the exit status; vm->stop_msg holds the reason (empty when the
 * guest exited normally). Main thread only.
 */
int vm__run(struct vm *vm);

/* Stop the VM; the first call wins. @fmt may be NULL (a clean guest exit). */
void vm__stop(struct vm *vm, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * A vCPU executed HLT. Parks the calling vCPU thread until the VM stops;
 * if every vCPU is parked, stops the VM (nothing can wake them).
 */
void vm__vcpu_halted(struct vm *vm, unsigned vcpu_id);

void vm__exit(struct vm *vm);

#endif
