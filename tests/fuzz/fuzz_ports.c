/*
 * Fuzz target: a guest's port I/O, through the bus the vCPU threads use
 * (bus__access()), to every legacy device a Linux microVM has: the 16550
 * serial port, the i8042's reset line, the CMOS clock, the ACPI PM block,
 * pvpanic, the boot timer and the test guest's exit port.
 *
 * The input is a list of accesses: a port (near a device's, or anywhere),
 * a width of 1, 2, 4 or 8 bytes (8 is more than KVM gives, and the bus must
 * still cope), a direction and a value.
 *
 * Invariants, beyond "no crash, no sanitizer report": an access no device
 * claims reads all ones and is counted; the serial port's receive buffer
 * never holds more than it can; the devices' callbacks (reset, power-off,
 * panic, exit) are only reached through their own ports.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "devices/bus.h"
#include "devices/legacy/acpi_pm.h"
#include "devices/legacy/boot_timer.h"
#include "devices/legacy/cmos.h"
#include "devices/legacy/exit_dev.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/pvpanic.h"
#include "devices/legacy/serial.h"
#include "lib/log.h"
#include "tests/fuzz/fuzz.h"
#include "vmm/boot/acpi.h"

static struct bus bus;
static struct serial serial;
static struct i8042 i8042;
static struct cmos cmos;
static struct acpi_pm pm;
static struct pvpanic pvpanic;
static struct exit_dev exit_dev;
static struct boot_timer boot_timer;
static char log_buf[4096];
static uint64_t last_port; /* the port of the access in progress */

static const uint16_t ports[] = {
	SERIAL_COM1_PORT,   EXIT_DEV_PORT, ACPI_PM1_EVT_PORT, I8042_DATA_PORT,
	I8042_COMMAND_PORT, CMOS_PORT,	   BOOT_TIMER_PORT,   PVPANIC_PORT,
};

static void in_range(uint64_t base, uint64_t len, const char *what)
{
	fuzz__check(last_port >= base && last_port < base + len, "%s from port 0x%llx", what,
		    (unsigned long long)last_port);
}

static void on_reset(void *ctx)
{
	(void)ctx;
	in_range(I8042_DATA_PORT, I8042_COMMAND_PORT - I8042_DATA_PORT + 1, "a reset");
}

static void on_poweroff(void *ctx)
{
	(void)ctx;
	in_range(ACPI_PM1_EVT_PORT, ACPI_PM_NR_PORTS, "a power-off");
}

static void on_panic(void *ctx)
{
	(void)ctx;
	in_range(PVPANIC_PORT, 1, "a panic");
}

static void on_exit_port(void *ctx, uint32_t status)
{
	(void)ctx;
	(void)status;
	in_range(EXIT_DEV_PORT, EXIT_DEV_NR_PORTS, "an exit");
}

static void set_irq(void *ctx, int level)
{
	(void)ctx;
	(void)level;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

	(void)argc;
	(void)argv;
	log__capture(log_buf, sizeof(log_buf));
	fuzz__check(null >= 0 && bus__init(&bus, "pio") == 0, "set-up");
	fuzz__check(serial__init(&serial, null) == 0 && i8042__init(&i8042, on_reset, NULL) == 0 &&
			    cmos__init(&cmos) == 0 && acpi_pm__init(&pm, on_poweroff, NULL) == 0,
		    "device set-up");
	serial__set_irq(&serial, set_irq, NULL);
	pvpanic__init(&pvpanic, on_panic, NULL);
	exit_dev.on_exit = on_exit_port;
	fuzz__check(
		!bus__register(&bus, SERIAL_COM1_PORT, SERIAL_NR_PORTS, "serial", &serial_ops,
			       &serial) &&
			!bus__register(&bus, EXIT_DEV_PORT, EXIT_DEV_NR_PORTS, "exit",
				       &exit_dev_ops, &exit_dev) &&
			!bus__register(&bus, ACPI_PM1_EVT_PORT, ACPI_PM_NR_PORTS, "acpi-pm",
				       &acpi_pm_ops, &pm) &&
			!bus__register(&bus, I8042_DATA_PORT, 1, "i8042", &i8042_data_ops,
				       &i8042) &&
			!bus__register(&bus, I8042_COMMAND_PORT, 1, "i8042", &i8042_command_ops,
				       &i8042) &&
			!bus__register(&bus, CMOS_PORT, CMOS_NR_PORTS, "cmos", &cmos_ops, &cmos) &&
			!bus__register(&bus, BOOT_TIMER_PORT, 1, "boot-timer", &boot_timer_ops,
				       &boot_timer) &&
			!bus__register(&bus, PVPANIC_PORT, 1, "pvpanic", &pvpanic_ops, &pvpanic),
		"bus__register");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	unsigned n = 0;

	while (in.n && n++ < 1024) {
		uint8_t how = fuzz__u8(&in);
		uint16_t off = fuzz__u16(&in);
		unsigned len = 1U << ((how >> 1) % 4);
		bool write = how & 1;
		uint64_t v = fuzz__u64(&in), unclaimed = bus.unclaimed;
		int ret;

		last_port = how & 0x80 ? off : ports[off % 8] + (off >> 8) % 8;
		ret = bus__access(&bus, last_port, &v, len, write, NULL);
		if (ret == -ENOENT) {
			fuzz__check(bus.unclaimed == unclaimed + 1,
				    "an unclaimed access not counted");
			fuzz__check(write || !memcmp(&v, "\xff\xff\xff\xff\xff\xff\xff\xff", len),
				    "an unclaimed read did not return all ones");
		}
		fuzz__check(serial.rx_len <= SERIAL_RX_MAX, "%u bytes in the receive buffer",
			    serial.rx_len);
		log_buf[0] = '\0';
	}
	return 0;
}
