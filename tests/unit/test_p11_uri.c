/* The RFC 7512 URI parser (hsm/p11_uri.c): what it takes, and what it refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "p11_uri.h"

static struct p11_uri u;
static const char *why;

static void
test_basic(void **state)
{
	(void)state;
	assert_int_equal(p11_uri_parse("pkcs11:token=certconn;object=ra", &u, &why), 0);
	assert_true(u.has_token);
	assert_string_equal(u.token, "certconn");
	assert_true(u.has_object);
	assert_string_equal(u.object, "ra");
	assert_false(u.has_id);
	assert_false(u.has_serial);
	assert_int_equal(u.type, P11_TYPE_ANY);
	/* no attributes at all is a valid URI (it matches everything) */
	assert_int_equal(p11_uri_parse("pkcs11:", &u, &why), 0);
	assert_false(u.has_token);
}

static void
test_all_attributes(void **state)
{
	(void)state;
	assert_int_equal(p11_uri_parse("pkcs11:token=My%20Token;manufacturer=SoftHSM%20project;"
	    "serial=a1b2c3;model=SoftHSM%20v2;slot-id=1234567;object=ca%2Dkey;"
	    "id=%01%02%ff%00;type=private", &u, &why), 0);
	assert_string_equal(u.token, "My Token");
	assert_string_equal(u.manufacturer, "SoftHSM project");
	assert_string_equal(u.serial, "a1b2c3");
	assert_string_equal(u.model, "SoftHSM v2");
	assert_true(u.has_slot_id);
	assert_int_equal(u.slot_id, 1234567);
	assert_string_equal(u.object, "ca-key");
	assert_int_equal(u.id_len, 4);
	assert_memory_equal(u.id, "\x01\x02\xff\x00", 4);
	assert_int_equal(u.type, P11_TYPE_PRIVATE);
	assert_int_equal(p11_uri_parse("pkcs11:type=cert", &u, &why), 0);
	assert_int_equal(u.type, P11_TYPE_CERT);
	assert_int_equal(p11_uri_parse("pkcs11:type=public", &u, &why), 0);
	assert_int_equal(u.type, P11_TYPE_PUBLIC);
}

static void
refused(const char *uri, const char *reason)
{
	if (p11_uri_parse(uri, &u, &why) != -1)
		fail_msg("%s was accepted", uri);
	assert_non_null(why);
	if (reason != NULL && strstr(why, reason) == NULL)
		fail_msg("%s: \"%s\" does not say \"%s\"", uri, why, reason);
}

static void
test_refusals(void **state)
{
	char big[2000];

	(void)state;
	refused("pkcs11:token=x;pin-value=1234", "pin-value");
	refused("pkcs11:token=x?pin-value=1234", "pin-value");
	refused("pkcs11:token=x?module-path=/tmp/evil.so", "query");
	refused("pkcs11:token=x;library-description=y", "unknown attribute");
	refused("pkcs11:token=x;x-vendor=y", "unknown attribute");
	refused("pkcs11:token=x;token=y", "twice");
	refused("pkcs11:type=private;type=cert", "twice");
	refused("pkcs11:type=key", "unknown object type");
	refused("pkcs11:token", "without '='");
	refused("pkcs11:token=x;;object=y", "empty attribute");
	refused("pkcs11:token=x;", "empty attribute");
	refused("pkcs11:token=a%0", "truncated");
	refused("pkcs11:token=a%zz", "bad %-escape");
	refused("pkcs11:token=a%00b", "%00");
	refused("pkcs11:token=a b", "not allowed");
	refused("pkcs11:object=a\"b", "not allowed");
	refused("pkcs11:id=", "empty id");
	refused("pkcs11:slot-id=12a", "decimal");
	refused("pkcs11:slot-id=-1", "decimal");
	refused("pkcs11:slot-id=", "slot-id");
	refused("pkcs11:slot-id=99999999999999999999999", "slot-id");
	refused("pkcs12:token=x", "not a pkcs11: URI");
	refused("token=x", "not a pkcs11: URI");
	refused(NULL, "no URI");
	/* longer than the PKCS#11 fields they are compared with */
	refused("pkcs11:token=123456789012345678901234567890123", "too long");
	refused("pkcs11:serial=12345678901234567", "too long");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "pkcs11:object=", 14);
	refused(big, "URI too long");
	/* exactly 32 bytes fits a label */
	assert_int_equal(p11_uri_parse("pkcs11:token=12345678901234567890123456789012", &u, &why),
	    0);
}

static void
test_format_roundtrip(void **state)
{
	char buf[512];
	static const uint8_t id[] = { 0x00, 0xab, 0x10 };

	(void)state;
	assert_int_equal(p11_uri_format(buf, sizeof(buf), "cert conn", "ra;1", id, sizeof(id)), 0);
	assert_string_equal(buf, "pkcs11:token=cert%20conn;object=ra%3B1;id=%00%AB%10");
	assert_int_equal(p11_uri_parse(buf, &u, &why), 0);
	assert_string_equal(u.token, "cert conn");
	assert_string_equal(u.object, "ra;1");
	assert_int_equal(u.id_len, 3);
	assert_memory_equal(u.id, id, 3);
	assert_int_equal(p11_uri_format(buf, sizeof(buf), "t", "ca", NULL, 0), 0);
	assert_string_equal(buf, "pkcs11:token=t;object=ca");
	assert_int_equal(p11_uri_format(buf, 10, "token", "object", NULL, 0), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_all_attributes),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_format_roundtrip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
