/* libFuzzer harness: the "key=value" config text stored in EP model files (and given on the
 * command line: each --flag is a key). What is accepted must write back to text that parses
 * to the same text again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eqprop/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    eqp_config c;
    eqp_config_default(&c);
    eqp_status st = eqp_config_from_text(&c, text);
    if (st == EQP_OK)
        st = eqp_config_check(&c);
    if (st == EQP_OK) {
        char buf[4096], buf2[4096];
        size_t n = eqp_config_to_text(&c, buf, sizeof buf);
        eqp_config d;
        eqp_config_default(&d);
        if (n >= sizeof buf || eqp_config_from_text(&d, buf) != EQP_OK ||
            eqp_config_check(&d) != EQP_OK)
            abort();
        size_t n2 = eqp_config_to_text(&d, buf2, sizeof buf2);
        if (n2 != n || memcmp(buf, buf2, n) != 0)
            abort(); /* the text is canonical after one round */
    } else if (eqp_last_error()[0] == '\0') {
        abort();
    }
    free(text);
    return 0;
}
