/* The Check suites of faultline's unit tests; main.c runs them all. */
#ifndef FAULTLINE_UNIT_H
#define FAULTLINE_UNIT_H

#include <check.h>

Suite *cli_suite(void);
Suite *elf_suite(void);
Suite *fdt_suite(void);
Suite *x86_boot_suite(void);
Suite *bus_suite(void);
Suite *devices_suite(void);
Suite *guest_ram_suite(void);
Suite *inject_suite(void);
Suite *mmu_suite(void);
void mmu_budget_tcases(Suite *s);   /* test_mmu_budget.c */
void mmu_failure_tcases(Suite *s);  /* test_mmu_failures.c */
void mmu_prefetch_tcases(Suite *s); /* test_prefetch.c */
Suite *gpa_map_suite(void);
Suite *bar_suite(void);
Suite *dedup_suite(void);
void dedup_cow_tcases(Suite *s);  /* test_dedup_cow.c */
void dedup_race_tcases(Suite *s); /* test_dedup_races.c */
Suite *bench_suite(void);
Suite *linux_suite(void);
Suite *linux_devices_suite(void);
Suite *channel_suite(void);
Suite *api_suite(void);
Suite *seccomp_suite(void);
Suite *kvm_stats_suite(void);
Suite *blob_suite(void);
Suite *state_suite(void);
Suite *snapshot_suite(void);
Suite *page_bits_suite(void);
Suite *ws_suite(void);

/* Assert that the captured messages are exactly @want. */
#define ck_assert_log(buf, want) ck_assert_str_eq(buf, want)

#endif
