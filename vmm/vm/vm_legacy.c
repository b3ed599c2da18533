/*
 * The VM's entries for its port-I/O devices (devices/legacy/): the serial
 * port and the exit device of every board, and the keyboard controller,
 * CMOS, ACPI PM1, boot timer and pvpanic of the Linux board.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/status.h"
#include "vmm/vm/vm.h"

/* Register @dev's ports; 0 or -errno (reported, naming it). */
static int vm_register_pio(struct vm *vm, uint64_t port, uint64_t n, const char *name,
			   const struct bus_device_ops *ops, void *dev)
{
	int ret = bus__register(&vm->pio_bus, port, n, name, ops, dev);

	if (ret)
		pr_err("cannot register %s at port 0x%llx: %s", name, (unsigned long long)port,
		       strerror(-ret));
	return ret;
}

/* ---- serial: COM1, the console ---- */

static void vm_serial_irq(void *ctx, int level)
{
	struct vm *vm = ctx;
	int ret = kvm__irq_line(&vm->kvm, SERIAL_COM1_IRQ, level);

	if (ret)
		vm__stop(vm, FL_EXIT_INTERNAL, "KVM_IRQ_LINE failed: %s (GSI %d, device serial)",
			 strerror(-ret), SERIAL_COM1_IRQ);
}

static int vm_serial_create(struct vm *vm, const struct run_config *cfg)
{
	int ret = serial__init(&vm->serial, STDOUT_FILENO);

	(void)cfg;
	if (ret) {
		pr_err("cannot set up the serial port: %s", strerror(-ret));
		return ret;
	}
	if (vm->boot_linux)
		serial__set_irq(&vm->serial, vm_serial_irq, vm);
	return vm_register_pio(vm, SERIAL_COM1_PORT, SERIAL_NR_PORTS, "serial", &serial_ops,
			       &vm->serial);
}

static void vm_serial_describe(const struct vm *vm, struct vm_guest_desc *d)
{
	(void)vm;
	d->pio[d->nr_pio++] =
		(struct fdt_pio_device){"serial", "ns16550a", SERIAL_COM1_PORT, SERIAL_NR_PORTS};
}

static int vm_serial_save(struct vm *vm, struct blob *b)
{
	serial__save(&vm->serial, b);
	return 0;
}

static int vm_serial_restore(struct vm *vm, struct blob_reader *r)
{
	return serial__restore(&vm->serial, r);
}

static void vm_serial_exit(struct vm *vm)
{
	serial__exit(&vm->serial);
}

const struct vm_device_ops vm_serial_dev = {
	.name = "serial",
	.create = vm_serial_create,
	.describe = vm_serial_describe,
	.save = vm_serial_save,
	.restore = vm_serial_restore,
	.exit = vm_serial_exit,
};

/* ---- the exit device: the guest's exit status ---- */

static void vm_guest_exit(void *ctx, uint32_t status)
{
	struct vm *vm = ctx;

	if (status > FL_GUEST_STATUS_MAX)
		vm__stop(vm, FL_EXIT_GUEST,
			 "guest exit status out of range: %u, the guest may use 0-%d (port: 0x%x)",
			 status, FL_GUEST_STATUS_MAX, EXIT_DEV_PORT);
	else
		vm__stop(vm, (int)status, NULL);
}

static int vm_exit_dev_create(struct vm *vm, const struct run_config *cfg)
{
	(void)cfg;
	vm->exit_dev.on_exit = vm_guest_exit;
	vm->exit_dev.ctx = vm;
	return vm_register_pio(vm, EXIT_DEV_PORT, EXIT_DEV_NR_PORTS, "exit", &exit_dev_ops,
			       &vm->exit_dev);
}

static void vm_exit_dev_describe(const struct vm *vm, struct vm_guest_desc *d)
{
	(void)vm;
	d->pio[d->nr_pio++] =
		(struct fdt_pio_device){"exit", "faultline,exit", EXIT_DEV_PORT, EXIT_DEV_NR_PORTS};
}

/* It holds no state: an empty section says so. */
static int vm_exit_dev_save(struct vm *vm, struct blob *b)
{
	(void)vm;
	vm__save_empty(b, "exit");
	return 0;
}

static int vm_exit_dev_restore(struct vm *vm, struct blob_reader *r)
{
	(void)vm;
	return vm__restore_empty(r, "exit");
}

const struct vm_device_ops vm_exit_dev = {
	.name = "exit",
	.create = vm_exit_dev_create,
	.describe = vm_exit_dev_describe,
	.save = vm_exit_dev_save,
	.restore = vm_exit_dev_restore,
};

/* ---- i8042: its reset line ends the VM ---- */

static void vm_i8042_reset(void *ctx)
{
	struct vm *vm = ctx;

	vm__stop(vm, 0, "the guest reset the machine (keyboard controller): the VM ends");
}

static int vm_i8042_create(struct vm *vm, const struct run_config *cfg)
{
	int ret = i8042__init(&vm->i8042, vm_i8042_reset, vm);

	(void)cfg;
	if (ret) {
		pr_err("cannot set up the keyboard controller: %s", strerror(-ret));
		return ret;
	}
	return vm_register_pio(vm, I8042_DATA_PORT, 1, "i8042", &i8042_data_ops, &vm->i8042)
		       ?: vm_register_pio(vm, I8042_COMMAND_PORT, 1, "i8042", &i8042_command_ops,
					  &vm->i8042);
}

static int vm_i8042_save(struct vm *vm, struct blob *b)
{
	i8042__save(&vm->i8042, b);
	return 0;
}

static int vm_i8042_restore(struct vm *vm, struct blob_reader *r)
{
	return i8042__restore(&vm->i8042, r);
}

static void vm_i8042_exit(struct vm *vm)
{
	i8042__exit(&vm->i8042);
}

const struct vm_device_ops vm_i8042_dev = {
	.name = "i8042",
	.create = vm_i8042_create,
	.save = vm_i8042_save,
	.restore = vm_i8042_restore,
	.exit = vm_i8042_exit,
};

/* ---- CMOS: the clock ---- */

static int vm_cmos_create(struct vm *vm, const struct run_config *cfg)
{
	int ret = cmos__init(&vm->cmos);

	(void)cfg;
	if (ret) {
		pr_err("cannot set up the CMOS clock: %s", strerror(-ret));
		return ret;
	}
	return vm_register_pio(vm, CMOS_PORT, CMOS_NR_PORTS, "cmos", &cmos_ops, &vm->cmos);
}

static int vm_cmos_save(struct vm *vm, struct blob *b)
{
	cmos__save(&vm->cmos, b);
	return 0;
}

static int vm_cmos_restore(struct vm *vm, struct blob_reader *r)
{
	return cmos__restore(&vm->cmos, r);
}

static void vm_cmos_exit(struct vm *vm)
{
	cmos__exit(&vm->cmos);
}

const struct vm_device_ops vm_cmos_dev = {
	.name = "cmos",
	.create = vm_cmos_create,
	.save = vm_cmos_save,
	.restore = vm_cmos_restore,
	.exit = vm_cmos_exit,
};

/* ---- ACPI PM1: S5 ends the VM ---- */

static void vm_acpi_poweroff(void *ctx)
{
	struct vm *vm = ctx;

	vm__stop(vm, 0, "the guest powered off (ACPI S5): the VM ends");
}

static int vm_acpi_pm_create(struct vm *vm, const struct run_config *cfg)
{
	int ret = acpi_pm__init(&vm->acpi_pm, vm_acpi_poweroff, vm);

	(void)cfg;
	if (ret) {
		pr_err("cannot set up the ACPI PM registers: %s", strerror(-ret));
		return ret;
	}
	return vm_register_pio(vm, ACPI_PM1_EVT_PORT, ACPI_PM_NR_PORTS, "acpi-pm", &acpi_pm_ops,
			       &vm->acpi_pm);
}

static int vm_acpi_pm_save(struct vm *vm, struct blob *b)
{
	acpi_pm__save(&vm->acpi_pm, b);
	return 0;
}

static int vm_acpi_pm_restore(struct vm *vm, struct blob_reader *r)
{
	return acpi_pm__restore(&vm->acpi_pm, r);
}

static void vm_acpi_pm_exit(struct vm *vm)
{
	acpi_pm__exit(&vm->acpi_pm);
}

const struct vm_device_ops vm_acpi_pm_dev = {
	.name = "acpi-pm",
	.create = vm_acpi_pm_create,
	.save = vm_acpi_pm_save,
	.restore = vm_acpi_pm_restore,
	.exit = vm_acpi_pm_exit,
};

/* ---- the boot timer: when init started (--boot-timeout, boot_time_us) ---- */

static int vm_boot_timer_create(struct vm *vm, const struct run_config *cfg)
{
	vm->boot_timer.start_ns = cfg->start_ns;
	return vm_register_pio(vm, BOOT_TIMER_PORT, 1, "boot-timer", &boot_timer_ops,
			       &vm->boot_timer);
}

static uint64_t vm_boot_us(const struct vm *vm)
{
	return __atomic_load_n(&vm->boot_timer.boot_ns, __ATOMIC_RELAXED) / 1000;
}

static void vm_boot_timer_stats_text(const struct vm *vm, FILE *out)
{
	fprintf(out, "  %-24s %12llu  start to the guest's boot-timer write (0: not written)\n",
		"boot_time_us", (unsigned long long)vm_boot_us(vm));
}

static void vm_boot_timer_stats_json(const struct vm *vm, json_t *root, json_t *devices)
{
	(void)devices;
	json_object_set_new(root, "boot_time_us", json_integer((json_int_t)vm_boot_us(vm)));
}

static int vm_boot_timer_save(struct vm *vm, struct blob *b)
{
	boot_timer__save(&vm->boot_timer, b);
	return 0;
}

static int vm_boot_timer_restore(struct vm *vm, struct blob_reader *r)
{
	return boot_timer__restore(&vm->boot_timer, r);
}

const struct vm_device_ops vm_boot_timer_dev = {
	.name = "boot-timer",
	.create = vm_boot_timer_create,
	.stats_text = vm_boot_timer_stats_text,
	.stats_json = vm_boot_timer_stats_json,
	.save = vm_boot_timer_save,
	.restore = vm_boot_timer_restore,
};

/* ---- the clone number: which clone of a snapshot the guest is (--clone) ---- */

static int vm_clone_id_create(struct vm *vm, const struct run_config *cfg)
{
	vm->clone_id.number = cfg->clone;
	return vm_register_pio(vm, CLONE_ID_PORT, CLONE_ID_NR_PORTS, "clone", &clone_id_ops,
			       &vm->clone_id);
}

static void vm_clone_id_describe(const struct vm *vm, struct vm_guest_desc *d)
{
	(void)vm;
	d->pio[d->nr_pio++] = (struct fdt_pio_device){"clone", "faultline,clone", CLONE_ID_PORT,
						      CLONE_ID_NR_PORTS};
}

static void vm_clone_id_stats_text(const struct vm *vm, FILE *out)
{
	fprintf(out, "  %-24s %12u  the number the guest reads at port 0x%x (--clone)\n", "clone",
		vm->clone_id.number, CLONE_ID_PORT);
}

static void vm_clone_id_stats_json(const struct vm *vm, json_t *root, json_t *devices)
{
	(void)devices;
	json_object_set_new(root, "clone", json_integer((json_int_t)vm->clone_id.number));
}

/* The number is each run's own (--clone): an empty section. */
static int vm_clone_id_save(struct vm *vm, struct blob *b)
{
	(void)vm;
	vm__save_empty(b, "clone");
	return 0;
}

static int vm_clone_id_restore(struct vm *vm, struct blob_reader *r)
{
	(void)vm;
	return vm__restore_empty(r, "clone");
}

const struct vm_device_ops vm_clone_id_dev = {
	.name = "clone",
	.create = vm_clone_id_create,
	.describe = vm_clone_id_describe,
	.stats_text = vm_clone_id_stats_text,
	.stats_json = vm_clone_id_stats_json,
	.save = vm_clone_id_save,
	.restore = vm_clone_id_restore,
};

/* ---- pvpanic: a guest's panic is a crash (72) ---- */

static void vm_pvpanic(void *ctx)
{
	struct vm *vm = ctx;

	vm__stop(vm, FL_EXIT_CRASH,
		 "guest crashed: kernel panic, reported through pvpanic (port: 0x%x)",
		 PVPANIC_PORT);
}

_Static_assert(ACPI_PVPANIC_PORT == PVPANIC_PORT, "the DSDT names the pvpanic port");

static int vm_pvpanic_create(struct vm *vm, const struct run_config *cfg)
{
	(void)cfg;
	pvpanic__init(&vm->pvpanic, vm_pvpanic, vm);
	return vm_register_pio(vm, PVPANIC_PORT, 1, "pvpanic", &pvpanic_ops, &vm->pvpanic);
}

static int vm_pvpanic_save(struct vm *vm, struct blob *b)
{
	pvpanic__save(&vm->pvpanic, b);
	return 0;
}

static int vm_pvpanic_restore(struct vm *vm, struct blob_reader *r)
{
	return pvpanic__restore(&vm->pvpanic, r);
}

const struct vm_device_ops vm_pvpanic_dev = {
	.name = "pvpanic",
	.create = vm_pvpanic_create,
	.save = vm_pvpanic_save,
	.restore = vm_pvpanic_restore,
};
