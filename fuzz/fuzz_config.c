/* libFuzzer harness: the "key=value" config text stored in model files. */
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
    if (eqp_config_from_text(&c, text) == EQP_OK && eqp_config_check(&c) == EQP_OK) {
        char buf[4096];
        size_t n = eqp_config_to_text(&c, buf, sizeof buf);
        eqp_config d;
        eqp_config_default(&d);
        /* what was accepted must round-trip */
        if (n >= sizeof buf || eqp_config_from_text(&d, buf) != EQP_OK)
            abort();
    }
    free(text);
    return 0;
}
