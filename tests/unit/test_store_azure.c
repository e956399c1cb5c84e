/*
 * test_store_azure.c - what the Azure backend shows of a failed reply: the <Error> code
 * and the first line of its message, or the x-ms-error-code header when the body has
 * none (HEAD). The requests themselves run against Azurite in
 * tests/integration/test_azure.py.
 */
#include <check.h>
#include <string.h>

#include "store/azure.h"
#include "testutil.h"

/* Found by tests/fuzz/fuzz_azure_xml: the RequestId and Time lines of Azure's Message
 * were shown (their line breaks as '?'), and an empty <Code> hid the header's code. */
START_TEST(test_error_code_and_first_line)
{
    char code[64], msg[200];
    const char *body = "\xef\xbb\xbf<?xml version=\"1.0\" encoding=\"utf-8\"?><Error>"
                       "<Code>BlobNotFound</Code><Message>The specified blob does not exist.\n"
                       "RequestId:4b5ae8e1-701e-0056-6b2d-9b5a07000000\n"
                       "Time:2024-05-01T12:00:00.1234567Z</Message></Error>";
    ck_assert(ck_azure_error_code(body, strlen(body), "BlobNotFound", code, sizeof(code), msg,
                                  sizeof(msg)));
    ck_assert_str_eq(code, "BlobNotFound");
    ck_assert_str_eq(msg, "The specified blob does not exist.");
    const char *empty = "<Error><Code></Code><Message>x</Message></Error>";
    ck_assert(ck_azure_error_code(empty, strlen(empty), "ServerBusy", code, sizeof(code), msg,
                                  sizeof(msg)));
    ck_assert_str_eq(code, "ServerBusy");
    ck_assert_str_eq(msg, "");
}
END_TEST

START_TEST(test_error_code_from_header)
{
    char code[64], msg[200];
    ck_assert(
        ck_azure_error_code("", 0, "ContainerNotFound", code, sizeof(code), msg, sizeof(msg)));
    ck_assert_str_eq(code, "ContainerNotFound");
    ck_assert_str_eq(msg, "");
    const char *html = "<html><body>502 Bad Gateway</body></html>";
    ck_assert(!ck_azure_error_code(html, strlen(html), "", code, sizeof(code), msg, sizeof(msg)));
    ck_assert_str_eq(code, "");
    /* a header value that is not a code is not shown */
    ck_assert(!ck_azure_error_code("", 0, "Blob Not:Found", code, sizeof(code), msg, sizeof(msg)));
    char longer[80];
    memset(longer, 'A', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    ck_assert(!ck_azure_error_code("", 0, longer, code, sizeof(code), msg, sizeof(msg)));
    ck_assert_str_eq(code, "");
}
END_TEST

static Suite *store_azure_suite(void)
{
    Suite *s = suite_create("store_azure");
    TCase *tc = tcase_create("errors");
    tcase_add_test(tc, test_error_code_and_first_line);
    tcase_add_test(tc, test_error_code_from_header);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tu_run_suite(store_azure_suite());
}
