/*
 * The VM's devices with BARs (shm, vram): their memory slots, their place
 * in the guest-physical map and the device tree, their statistics, and
 * what happens when one of their faults fails.
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
static int vm_bar_map(void *owner, uint64_t gpa, uint8_t *host)
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
static int vm_bar_unmap(void *owner, int handle, uint64_t gpa)
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

static bool vm_bar_stopping(void *owner)
{
	struct vm *vm = owner;
	bool stopping;

	pthread_mutex_lock(&vm->lock);
	stopping = vm->stopping;
	pthread_mutex_unlock(&vm->lock);
	return stopping;
}

static int vm_add_bar(struct vm *vm, struct bar *bar)
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

void vm__init_bar_slots(struct vm *vm)
{
	pthread_mutex_init(&vm->slot_lock, NULL);
	vm->nr_bar_slots =
		vm->kvm.nr_memslots > VM_BAR_SLOT_BASE ? vm->kvm.nr_memslots - VM_BAR_SLOT_BASE : 0;
	if (vm->nr_bar_slots > VM_BAR_SLOTS)
		vm->nr_bar_slots = VM_BAR_SLOTS;
}

static struct bar_mapper vm_bar_mapper(struct vm *vm)
{
	return (struct bar_mapper){vm_bar_map, vm_bar_unmap, vm_bar_stopping, vm};
}

static void vm_bar_stats_text(const struct bar *bar, FILE *out)
{
	const struct bar_counter *c;
	unsigned i;

	fprintf(out, "device %s (BAR at GPA 0x%llx, %llu bytes):\n", bar->name,
		(unsigned long long)bar->gpa, (unsigned long long)bar->size);
#define BAR_COUNTER_TEXT(name, help)                                                               \
	fprintf(out, "  %-24s %12llu  %s\n", #name,                                                \
		(unsigned long long)__atomic_load_n(&bar->stats.name, __ATOMIC_RELAXED), help);
	BAR_COUNTERS(BAR_COUNTER_TEXT)
#undef BAR_COUNTER_TEXT
	for (i = 0, c = bar->dev_counters; c && c->name && i < BAR_DEV_COUNTERS; i++, c++)
		fprintf(out, "  %-24s %12llu  %s\n", c->name,
			(unsigned long long)__atomic_load_n(&bar->stats.dev[i], __ATOMIC_RELAXED),
			c->help);
}

static json_t *vm_bar_stats_json(const struct bar *bar)
{
	json_t *o = json_object();
	const struct bar_counter *c;
	unsigned i;

#define BAR_COUNTER_JSON(name, help)                                                               \
	json_object_set_new(                                                                       \
		o, #name,                                                                          \
		json_integer((json_int_t)__atomic_load_n(&bar->stats.name, __ATOMIC_RELAXED)));
	BAR_COUNTERS(BAR_COUNTER_JSON)
#undef BAR_COUNTER_JSON
	for (i = 0, c = bar->dev_counters; c && c->name && i < BAR_DEV_COUNTERS; i++, c++)
		json_object_set_new(o, c->name,
				    json_integer((json_int_t)__atomic_load_n(&bar->stats.dev[i],
									     __ATOMIC_RELAXED)));
	return o;
}

static void vm_bar_stats(const struct bar *bar, json_t *devices)
{
	json_object_set_new(devices, bar->name, vm_bar_stats_json(bar));
}

/* ---- shm: a file's pages as a BAR (--shm) ---- */

static int vm_shm_create(struct vm *vm, const struct run_config *cfg)
{
	const struct bar_mapper mapper = vm_bar_mapper(vm);
	int ret;

	if (!cfg->shm_path)
		return 0;
	vm->shm = calloc(1, sizeof(*vm->shm));
	if (!vm->shm)
		return -ENOMEM;
	ret = shm__init(vm->shm, cfg->shm_path, cfg->shm_size, cfg->shm_doorbell, VM_SHM_GPA,
			&mapper, cfg->fault_retries, cfg->fault_timeout_ms);
	if (ret) /* exit() undoes it; mmap's -ENODEV: the file cannot be mapped */
		return ret == -ENODEV ? -EMEDIUMTYPE : ret;
	return vm_add_bar(vm, &vm->shm->bar);
}

static void vm_shm_describe(const struct vm *vm, struct vm_guest_desc *d)
{
	if (vm->shm)
		d->mmio[d->nr_mmio++] = (struct fdt_mmio_device){
			.node = "shm",
			.compatible = "faultline,shm",
			.nr_regs = 2,
			.reg = {{VM_SHM_GPA, SHM_DATA_OFFSET},
				{VM_SHM_GPA + SHM_DATA_OFFSET, vm->shm->size}},
		};
}

static void vm_shm_stats_text(const struct vm *vm, FILE *out)
{
	if (vm->shm)
		vm_bar_stats_text(&vm->shm->bar, out);
}

static void vm_shm_stats_json(const struct vm *vm, json_t *root, json_t *devices)
{
	(void)root;
	if (vm->shm)
		vm_bar_stats(&vm->shm->bar, devices);
}

static void vm_shm_exit(struct vm *vm)
{
	if (vm->shm)
		shm__exit(vm->shm);
	free(vm->shm);
	vm->shm = NULL;
}

/* What the guest wrote into the file goes to the disk with the snapshot. */
static int vm_shm_save(struct vm *vm, struct blob *b)
{
	size_t at = vm__save_present(b, "shm-dev", vm->shm != NULL);
	int ret = 0;

	if (vm->shm) {
		shm__save(vm->shm, b);
		ret = shm__sync(vm->shm);
	}
	blob__section_end(b, at);
	return ret;
}

static int vm_shm_restore(struct vm *vm, struct blob_reader *r)
{
	struct blob_reader sub;
	bool had;

	if (vm__restore_present(r, "shm-dev", "shm", "has one", "has none", vm->shm != NULL, &sub,
				&had))
		return -EINVAL;
	if (had && shm__restore(vm->shm, &sub))
		return blob__fail(r, "%s", sub.why);
	return vm__restore_present_end(r, "shm", &sub);
}

const struct vm_device_ops vm_shm_dev = {
	.name = "shm",
	.create = vm_shm_create,
	.describe = vm_shm_describe,
	.stats_text = vm_shm_stats_text,
	.stats_json = vm_shm_stats_json,
	.exit = vm_shm_exit,
	.save = vm_shm_save,
	.restore = vm_shm_restore,
};

/* ---- vram: device memory that migrates into a pool (--vram) ---- */

static int vm_vram_create(struct vm *vm, const struct run_config *cfg)
{
	const struct bar_mapper mapper = vm_bar_mapper(vm);
	int ret;

	if (!cfg->vram_size)
		return 0;
	vm->vram = calloc(1, sizeof(*vm->vram));
	if (!vm->vram)
		return -ENOMEM;
	ret = vram__init(vm->vram, cfg->vram_size, cfg->vram_pool, VM_VRAM_GPA, &vm->mmu, &mapper,
			 cfg->fault_retries, cfg->fault_timeout_ms);
	return ret ?: vm_add_bar(vm, &vm->vram->bar);
}

static void vm_vram_describe(const struct vm *vm, struct vm_guest_desc *d)
{
	if (vm->vram)
		d->mmio[d->nr_mmio++] = (struct fdt_mmio_device){
			.node = "vram",
			.compatible = "faultline,vram",
			.nr_regs = 1,
			.reg = {{VM_VRAM_GPA, vm->vram->bar.size}},
			.prop = "faultline,pool-size",
			.prop_value = vm->vram->pool_pages * BAR_PAGE_SIZE,
		};
}

static void vm_vram_stats_text(const struct vm *vm, FILE *out)
{
	if (vm->vram)
		vm_bar_stats_text(&vm->vram->bar, out);
}

static void vm_vram_stats_json(const struct vm *vm, json_t *root, json_t *devices)
{
	(void)root;
	if (vm->vram)
		vm_bar_stats(&vm->vram->bar, devices);
}

static void vm_vram_exit(struct vm *vm)
{
	if (vm->vram)
		vram__exit(vm->vram);
	free(vm->vram);
	vm->vram = NULL;
}

static int vm_vram_save(struct vm *vm, struct blob *b)
{
	size_t at = vm__save_present(b, "vram-dev", vm->vram != NULL);

	if (vm->vram)
		vram__save(vm->vram, b);
	blob__section_end(b, at);
	return 0;
}

static int vm_vram_restore(struct vm *vm, struct blob_reader *r)
{
	struct blob_reader sub;
	bool had;

	if (vm__restore_present(r, "vram-dev", "vram", "has one", "has none", vm->vram != NULL,
				&sub, &had))
		return -EINVAL;
	if (had && vram__restore(vm->vram, &sub))
		return blob__fail(r, "%s", sub.why);
	return vm__restore_present_end(r, "vram", &sub);
}

const struct vm_device_ops vm_vram_dev = {
	.name = "vram",
	.create = vm_vram_create,
	.describe = vm_vram_describe,
	.stats_text = vm_vram_stats_text,
	.stats_json = vm_vram_stats_json,
	.exit = vm_vram_exit,
	.save = vm_vram_save,
	.restore = vm_vram_restore,
};

/* ---- the dedup device: the guest's view of dedup (--dedup on) ---- */

static int vm_dedup_dev_create(struct vm *vm, const struct run_config *cfg)
{
	const struct bar_mapper mapper = vm_bar_mapper(vm);
	int ret;

	(void)cfg;
	if (!vm->dedup)
		return 0;
	vm->dedup_dev = calloc(1, sizeof(*vm->dedup_dev));
	if (!vm->dedup_dev)
		return -ENOMEM;
	ret = dedup_dev__init(vm->dedup_dev, vm->dedup, VM_DEDUP_GPA, &mapper);
	return ret ?: vm_add_bar(vm, &vm->dedup_dev->bar);
}

static void vm_dedup_dev_describe(const struct vm *vm, struct vm_guest_desc *d)
{
	if (vm->dedup_dev)
		d->mmio[d->nr_mmio++] = (struct fdt_mmio_device){
			.node = "dedup",
			.compatible = "faultline,dedup",
			.nr_regs = 1,
			.reg = {{VM_DEDUP_GPA, DEDUP_DEV_SIZE}},
		};
}

static void vm_dedup_dev_stats_text(const struct vm *vm, FILE *out)
{
	if (vm->dedup_dev)
		vm_bar_stats_text(&vm->dedup_dev->bar, out);
}

static void vm_dedup_dev_stats_json(const struct vm *vm, json_t *root, json_t *devices)
{
	(void)root;
	if (vm->dedup_dev)
		vm_bar_stats(&vm->dedup_dev->bar, devices);
}

static void vm_dedup_dev_exit(struct vm *vm)
{
	if (vm->dedup_dev)
		dedup_dev__exit(vm->dedup_dev);
	free(vm->dedup_dev);
	vm->dedup_dev = NULL;
}

/*
 * Its registers are dedup's knobs and counters: the knobs go in the
 * manifest, the counters start again. Whether there is one, only.
 */
static int vm_dedup_save(struct vm *vm, struct blob *b)
{
	blob__section_end(b, vm__save_present(b, "dedup", vm->dedup_dev != NULL));
	return 0;
}

static int vm_dedup_restore(struct vm *vm, struct blob_reader *r)
{
	struct blob_reader sub;
	bool had;

	if (vm__restore_present(r, "dedup", "dedup", "has a dedup device", "has no dedup device",
				vm->dedup_dev != NULL, &sub, &had))
		return -EINVAL;
	return vm__restore_present_end(r, "dedup", &sub);
}

const struct vm_device_ops vm_dedup_dev = {
	.name = "dedup",
	.create = vm_dedup_dev_create,
	.describe = vm_dedup_dev_describe,
	.stats_text = vm_dedup_dev_stats_text,
	.stats_json = vm_dedup_dev_stats_json,
	.exit = vm_dedup_dev_exit,
	.save = vm_dedup_save,
	.restore = vm_dedup_restore,
};

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
