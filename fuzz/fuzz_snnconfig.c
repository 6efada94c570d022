/* libFuzzer harness: the spiking-network config text stored in SNN model files (and given
 * on the command line), including the layer spec parser (--sizes 1x28x28-c12k5-m2-10).
 * What is accepted must write back to text that parses to the same text again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eqprop/snn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    eqp_snn_config c;
    eqp_snn_config_default(&c);
    eqp_status st = eqp_snn_config_from_text(&c, text);
    if (st == EQP_OK)
        st = eqp_snn_config_check(&c);
    if (st == EQP_OK) {
        static char buf[16384], buf2[16384];
        size_t n = eqp_snn_config_to_text(&c, buf, sizeof buf);
        eqp_snn_config d;
        eqp_snn_config_default(&d);
        if (n >= sizeof buf || eqp_snn_config_from_text(&d, buf) != EQP_OK ||
            eqp_snn_config_check(&d) != EQP_OK)
            abort();
        size_t n2 = eqp_snn_config_to_text(&d, buf2, sizeof buf2);
        if (n2 != n || memcmp(buf, buf2, n) != 0)
            abort(); /* the text is canonical after one round */
    } else if (eqp_last_error()[0] == '\0') {
        abort();
    }
    free(text);
    return 0;
}
