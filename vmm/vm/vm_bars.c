/*
 * The VM's devices with BARs (shm, vram): their memory slots, their place
 * in the guest-physical map and the device tree, and what happens when
 * one of their faults fails. Their statistics are vm_stats.c's.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/inject.h"
#include "lib/log.h"
#include "lib/status.h"
#include "vmm/kvm/vcpu.h"
#include "vmm/sys/host_mem.h"
#include "vmm/vm/vm.h"

/* bar_mapper.map: a memory slot of one page. */
static int vm__bar_map(void *owner, uint64_t gpa, uint8_t *host)
{
	struct vm *vm = owner;
	unsigned i;
	int ret;

	pthread_mutex_lock(&vm->slot_lock);
	for (i = 0; i < vm->nr_bar_slots && vm->bar_slot_used[i]; i++)
		;
	if (i == vm->nr_bar_slots) {
		pthread_mutex_unlock(&vm->slot_lock);
		return -ENOSPC;
	}
	ret = kvm__set_memslot(&vm->kvm, VM_BAR_SLOT_BASE + i, gpa, BAR_PAGE_SIZE, host);
	if (!ret)
		vm->bar_slot_used[i] = 1;
	pthread_mutex_unlock(&vm->slot_lock);
	return ret ? ret : (int)i;
}

/* bar_mapper.unmap: delete the slot; KVM zaps the page before returning. */
static int vm__bar_unmap(void *owner, int handle, uint64_t gpa)
{
	struct vm *vm = owner;
	int ret;

	pthread_mutex_lock(&vm->slot_lock);
	ret = kvm__set_memslot(&vm->kvm, VM_BAR_SLOT_BASE + (unsigned)handle, gpa, 0, NULL);
	if (!ret)
		vm->bar_slot_used[handle] = 0;
	pthread_mutex_unlock(&vm->slot_lock);
	return ret;
}

static bool vm__bar_stopping(void *owner)
{
	struct vm *vm = owner;
	bool stopping;

	pthread_mutex_lock(&vm->lock);
	stopping = vm->stopping;
	pthread_mutex_unlock(&vm->lock);
	return stopping;
}

static int vm__add_bar(struct vm *vm, struct bar *bar)
{
	const struct gpa_region r = {
		.kind = GPA_BAR,
		.name = bar->name,
		.gpa = bar->gpa,
		.size = bar->size,
		.backing = bar->name,
		.priv = bar,
	};
	int ret = gpa_map__add(&vm->mmu.map, &r);

	if (ret)
		pr_err("cannot place the %s BAR in the guest-physical map: %s (GPA 0x%llx)",
		       bar->name, strerror(-ret), (unsigned long long)bar->gpa);
	return ret;
}

int vm__init_bars(struct vm *vm, const struct run_config *cfg)
{
	const struct bar_mapper mapper = {vm__bar_map, vm__bar_unmap, vm__bar_stopping, vm};
	unsigned retries = cfg->fault_retries, ms = cfg->fault_timeout_ms;
	int ret;

	pthread_mutex_init(&vm->slot_lock, NULL);
	vm->nr_bar_slots =
		vm->kvm.nr_memslots > VM_BAR_SLOT_BASE ? vm->kvm.nr_memslots - VM_BAR_SLOT_BASE : 0;
	if (vm->nr_bar_slots > VM_BAR_SLOTS)
		vm->nr_bar_slots = VM_BAR_SLOTS;
	if (cfg->shm_path) {
		vm->shm = calloc(1, sizeof(*vm->shm));
		if (!vm->shm)
			return FL_EXIT_INTERNAL;
		ret = shm__init(vm->shm, cfg->shm_path, cfg->shm_size, cfg->shm_doorbell,
				VM_SHM_GPA, &mapper, retries, ms);
		if (ret)
			return ret == -ENOMEM || ret == -EINVAL ? FL_EXIT_INTERNAL
								: FL_EXIT_NOINPUT;
		if (vm__add_bar(vm, &vm->shm->bar))
			return FL_EXIT_INTERNAL;
	}
	if (cfg->vram_size) {
		vm->vram = calloc(1, sizeof(*vm->vram));
		if (!vm->vram)
			return FL_EXIT_INTERNAL;
		if (vram__init(vm->vram, cfg->vram_size, cfg->vram_pool, VM_VRAM_GPA, &vm->mmu,
			       &mapper, retries, ms) ||
		    vm__add_bar(vm, &vm->vram->bar))
			return FL_EXIT_INTERNAL;
	}
	if (vm->dedup) {
		vm->dedup_dev = calloc(1, sizeof(*vm->dedup_dev));
		if (!vm->dedup_dev ||
		    dedup_dev__init(vm->dedup_dev, vm->dedup, VM_DEDUP_GPA, &mapper) ||
		    vm__add_bar(vm, &vm->dedup_dev->bar))
			return FL_EXIT_INTERNAL;
	}
	return 0;
}

void vm__exit_bars(struct vm *vm)
{
	if (vm->shm)
		shm__exit(vm->shm);
	if (vm->vram)
		vram__exit(vm->vram);
	if (vm->dedup_dev)
		dedup_dev__exit(vm->dedup_dev);
	free(vm->shm);
	free(vm->vram);
	free(vm->dedup_dev);
	vm->shm = NULL;
	vm->vram = NULL;
	vm->dedup_dev = NULL;
}

unsigned vm__fdt_bar_devices(const struct vm *vm, struct fdt_mmio_device *out)
{
	unsigned n = 0;

	if (vm->shm)
		out[n++] = (struct fdt_mmio_device){
			.node = "shm",
			.compatible = "faultline,shm",
			.nr_regs = 2,
			.reg = {{VM_SHM_GPA, SHM_DATA_OFFSET},
				{VM_SHM_GPA + SHM_DATA_OFFSET, vm->shm->size}},
		};
	if (vm->vram)
		out[n++] = (struct fdt_mmio_device){
			.node = "vram",
			.compatible = "faultline,vram",
			.nr_regs = 1,
			.reg = {{VM_VRAM_GPA, vm->vram->bar.size}},
			.prop = "faultline,pool-size",
			.prop_value = vm->vram->pool_pages * BAR_PAGE_SIZE,
		};
	if (vm->dedup_dev)
		out[n++] = (struct fdt_mmio_device){
			.node = "dedup",
			.compatible = "faultline,dedup",
			.nr_regs = 1,
			.reg = {{VM_DEDUP_GPA, DEDUP_DEV_SIZE}},
		};
	return n;
}

void vm__bar_failed(struct vm *vm, struct fault_ctx *ctx, fault_t r, const char *why)
{
	struct mmu_pages pages;
	char msg[VM_STOP_MSG_LEN];

	if (r & FAULT_OOM) {
		mmu__pages(&vm->mmu, &pages);
		snprintf(msg, sizeof(msg),
			 "guest out of memory: %s (budget %llu pages, resident %llu "
			 "pages)",
			 why, (unsigned long long)pages.budget, (unsigned long long)pages.resident);
		if (vm->on_oom == VM_OOM_MCE)
			vm__inject_mce(vm, ctx, FL_EXIT_OOM, msg);
		else if (vm->on_oom == VM_OOM_PAUSE)
			vm__oom_pause(vm, ctx, msg);
		else
			vm__stop(vm, FL_EXIT_OOM, "%s (GPA 0x%llx, vCPU %d)", msg,
				 (unsigned long long)ctx->gpa, ctx->vcpu);
	} else if (r & FAULT_SIGBUS) {
		snprintf(msg, sizeof(msg), "device memory error: %s", why);
		vm__inject_mce(vm, ctx, FL_EXIT_FAULT, msg);
	} else if (r & FAULT_MMIO) {
		vm__stop(vm, FL_EXIT_GUEST, "%s (GPA 0x%llx, vCPU %d)", why,
			 (unsigned long long)ctx->gpa, ctx->vcpu);
	} else {
		vm__stop(vm, FL_EXIT_FAULT, "guest page fault failed: %s (GPA 0x%llx, vCPU %d)",
			 why, (unsigned long long)ctx->gpa, ctx->vcpu);
	}
}
