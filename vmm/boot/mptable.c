#include <string.h>

#include "vmm/boot/mptable.h"

/* The table's records, as the specification lays them out. */
struct mpf {
	char signature[4]; /* "_MP_" */
	uint32_t physptr;
	uint8_t length; /* in 16-byte units */
	uint8_t specrev;
	uint8_t checksum;
	uint8_t feature[5];
} __attribute__((packed));

struct mpc_header {
	char signature[4]; /* "PCMP" */
	uint16_t length;
	uint8_t specrev;
	uint8_t checksum;
	char oem[8];
	char product[12];
	uint32_t oem_ptr;
	uint16_t oem_size;
	uint16_t count;
	uint32_t lapic;
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));

struct mpc_cpu {
	uint8_t type;
	uint8_t apic_id;
	uint8_t apic_ver;
	uint8_t flags;
	uint32_t signature;
	uint32_t features;
	uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus {
	uint8_t type;
	uint8_t id;
	char name[6];
} __attribute__((packed));

struct mpc_ioapic {
	uint8_t type;
	uint8_t id;
	uint8_t ver;
	uint8_t flags;
	uint32_t addr;
} __attribute__((packed));

struct mpc_irq {
	uint8_t type;
	uint8_t irq_type;
	uint16_t flags;
	uint8_t src_bus;
	uint8_t src_irq;
	uint8_t dst_apic;
	uint8_t dst_pin;
} __attribute__((packed));

enum { MP_CPU, MP_BUS, MP_IOAPIC, MP_IOINT, MP_LINT };
enum { MP_INT = 0, MP_NMI = 1, MP_EXTINT = 3 };

#define MP_SPEC_REV	  4
#define MP_CPU_ENABLED	  0x01
#define MP_CPU_BSP	  0x02
#define MP_APIC_VERSION	  0x14
#define MP_IOAPIC_VERSION 0x11
#define MP_ISA_BUS	  0
#define MP_ALL_APICS	  0xff
#define MP_LINTS	  2

size_t mptable__size(unsigned nr_cpus)
{
	return sizeof(struct mpf) + sizeof(struct mpc_header) + nr_cpus * sizeof(struct mpc_cpu) +
	       sizeof(struct mpc_bus) + sizeof(struct mpc_ioapic) +
	       (MPTABLE_ISA_IRQS + MP_LINTS) * sizeof(struct mpc_irq);
}

static uint8_t mptable_checksum(const void *p, size_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum += *b++;
	return (uint8_t)-sum;
}

size_t mptable__build(void *buf, size_t len, uint64_t gpa, unsigned nr_cpus, uint32_t cpu_signature,
		      uint32_t cpu_features)
{
	size_t size = mptable__size(nr_cpus);
	uint8_t *p = buf, ioapic_id = (uint8_t)nr_cpus;
	struct mpf *mpf = buf;
	struct mpc_header *h = (struct mpc_header *)(mpf + 1);
	uint8_t *e = (uint8_t *)(h + 1);
	unsigned i;

	if (len < size || nr_cpus == 0 || nr_cpus >= MP_ALL_APICS)
		return 0;
	memset(p, 0, size);
	for (i = 0; i < nr_cpus; i++, e += sizeof(struct mpc_cpu)) {
		struct mpc_cpu c = {
			.type = MP_CPU,
			.apic_id = (uint8_t)i,
			.apic_ver = MP_APIC_VERSION,
			.flags = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0),
			.signature = cpu_signature,
			.features = cpu_features,
		};
		memcpy(e, &c, sizeof(c));
	}
	memcpy(e, &(struct mpc_bus){.type = MP_BUS, .id = MP_ISA_BUS, .name = "ISA   "},
	       sizeof(struct mpc_bus));
	e += sizeof(struct mpc_bus);
	memcpy(e,
	       &(struct mpc_ioapic){.type = MP_IOAPIC,
				    .id = ioapic_id,
				    .ver = MP_IOAPIC_VERSION,
				    .flags = 1,
				    .addr = MPTABLE_IOAPIC_GPA},
	       sizeof(struct mpc_ioapic));
	e += sizeof(struct mpc_ioapic);
	for (i = 0; i < MPTABLE_ISA_IRQS; i++, e += sizeof(struct mpc_irq))
		memcpy(e,
		       &(struct mpc_irq){.type = MP_IOINT,
					 .irq_type = MP_INT,
					 .src_bus = MP_ISA_BUS,
					 .src_irq = (uint8_t)i,
					 .dst_apic = ioapic_id,
					 .dst_pin = (uint8_t)i},
		       sizeof(struct mpc_irq));
	for (i = 0; i < MP_LINTS; i++, e += sizeof(struct mpc_irq))
		memcpy(e,
		       &(struct mpc_irq){.type = MP_LINT,
					 .irq_type = i == 0 ? MP_EXTINT : MP_NMI,
					 .src_bus = MP_ISA_BUS,
					 .dst_apic = MP_ALL_APICS,
					 .dst_pin = (uint8_t)i},
		       sizeof(struct mpc_irq));
	memcpy(h->signature, "PCMP", 4);
	h->length = (uint16_t)(size - sizeof(*mpf));
	h->specrev = MP_SPEC_REV;
	memcpy(h->oem, "FAULTLN ", 8);
	memcpy(h->product, "MICROVM     ", 12);
	h->count = (uint16_t)(nr_cpus + 1 + 1 + MPTABLE_ISA_IRQS + MP_LINTS);
	h->lapic = MPTABLE_LAPIC_GPA;
	h->checksum = mptable_checksum(h, h->length);
	memcpy(mpf->signature, "_MP_", 4);
	mpf->physptr = (uint32_t)(gpa + sizeof(*mpf));
	mpf->length = 1;
	mpf->specrev = MP_SPEC_REV;
	mpf->checksum = mptable_checksum(mpf, sizeof(*mpf));
	return size;
}
