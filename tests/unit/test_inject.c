#include <errno.h>

#include "lib/inject.h"
#include "tests/unit/unit.h"

START_TEST(disabled)
{
	ck_assert_int_eq(inject__init(NULL), 0);
	ck_assert_int_eq(inject__check("KVM_RUN"), 0);
	ck_assert_int_eq(inject__init(""), 0);
	ck_assert_int_eq(inject__check("KVM_RUN"), 0);
}
END_TEST

START_TEST(skip_and_times)
{
	int i;

	ck_assert_int_eq(inject__init("KVM_RUN:EINTR:2:3,mmap.guest_ram:12"), 0);
	ck_assert_int_eq(inject__check("KVM_RUN"), 0);
	ck_assert_int_eq(inject__check("KVM_RUN"), 0);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(inject__check("KVM_RUN"), EINTR);
	ck_assert_int_eq(inject__check("KVM_RUN"), 0);
	ck_assert_int_eq(inject__check("mmap.guest_ram"), ENOMEM); /* 12 by number */
	ck_assert_int_eq(inject__check("mmap.guest_ram"), 0);	   /* once by default */
	ck_assert_int_eq(inject__check("KVM_CREATE_VM"), 0);
}
END_TEST

START_TEST(forever)
{
	int i;

	ck_assert_int_eq(inject__init("UFFDIO_COPY:EAGAIN:1:0"), 0);
	ck_assert_int_eq(inject__check("UFFDIO_COPY"), 0);
	for (i = 0; i < 100; i++)
		ck_assert_int_eq(inject__check("UFFDIO_COPY"), EAGAIN);
}
END_TEST

START_TEST(scoped)
{
	ck_assert_int_eq(inject__init("UFFDIO_COPY@guest:EAGAIN:1:2,budget.charge:ENOMEM"), 0);
	/* The monitor's calls (no scope) do not see a @guest rule... */
	ck_assert_int_eq(inject__check_scoped("UFFDIO_COPY", NULL), 0);
	ck_assert_int_eq(inject__check("UFFDIO_COPY"), 0);
	/* ...the guest's do, after its own skip count. */
	ck_assert_int_eq(inject__check_scoped("UFFDIO_COPY", "guest"), 0);
	ck_assert_int_eq(inject__check_scoped("UFFDIO_COPY", "guest"), EAGAIN);
	ck_assert_int_eq(inject__check_scoped("UFFDIO_COPY", "guest"), EAGAIN);
	ck_assert_int_eq(inject__check_scoped("UFFDIO_COPY", "guest"), 0);
	/* An unscoped rule applies to every scope. */
	ck_assert_int_eq(inject__check_scoped("budget.charge", "guest"), ENOMEM);
	ck_assert_int_eq(inject__check_scoped("UFFDIO", "guest"), 0);
}
END_TEST

/* For calls that fail with -1 and errno: "inject__fail(site) ?: call()". */
START_TEST(fail_sets_errno)
{
	ck_assert_int_eq(inject__init("eventfd.vm:EMFILE:1"), 0);
	errno = 0;
	ck_assert_int_eq(inject__fail("eventfd.vm") ?: 7, 7);
	ck_assert_int_eq(errno, 0);
	ck_assert_int_eq(inject__fail("eventfd.vm") ?: 7, -1);
	ck_assert_int_eq(errno, EMFILE);
	ck_assert_int_eq(inject__fail("eventfd.vm"), 0);
}
END_TEST

START_TEST(malformed)
{
	static const char *const bad[] = {
		"KVM_RUN",						 /* no errno */
		"KVM_RUN:EWHAT",					 /* unknown errno name */
		"KVM_RUN:0",						 /* not an error */
		"KVM_RUN:EIO:x",					 /* skip not a number */
		"KVM_RUN:EIO:1:2:3",					 /* too many fields */
		",",							 /* no rule */
		"a:EIO,b:EIO,c:EIO,d:EIO,e:EIO,f:EIO,g:EIO,h:EIO,i:EIO", /* > 8 rules */
		"a_site_name_that_is_far_too_long_to_be_any_real_site:EIO",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(inject__init(bad[i]) == -EINVAL, "accepted '%s'", bad[i]);
	ck_assert_int_eq(inject__init(NULL), 0);
}
END_TEST

Suite *inject_suite(void)
{
	Suite *s = suite_create("inject");
	TCase *tc = tcase_create("rules");

	tcase_add_test(tc, disabled);
	tcase_add_test(tc, skip_and_times);
	tcase_add_test(tc, forever);
	tcase_add_test(tc, scoped);
	tcase_add_test(tc, fail_sets_errno);
	tcase_add_test(tc, malformed);
	suite_add_tcase(s, tc);
	return s;
}
