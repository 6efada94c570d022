/* The `eqprop` command: one subcommand per file (cmd_*.c). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "eqprop/dist.h"

static void usage(FILE *f) {
    fprintf(f, "usage: eqprop <command> [options]\n\n"
               "commands:\n"
               "  train    train an energy-based network with Equilibrium Propagation\n"
               "  eval     classification error of a saved model on a dataset\n"
               "  gradcheck  does a learning signal follow the gradient? (finite differences,\n"
               "           BPTT, statistics across seeds)\n"
               "  hopfield associative recall of a classical or modern Hopfield memory\n"
               "  sep-sequence  windowed spiking EP on a sequence task\n"
               "  export   write a spiking network as a NIR graph (--nir FILE)\n"
               "  plot     SVG plots: learning curves, spike rasters, gradcheck scatter,\n"
               "           the delay sweep\n"
               "  delay-sweep  where delayed coupling destabilises the fixed point: the\n"
               "           eigenvalue prediction, the relaxation, EP and BPTT gradients\n"
               "  sweep    independent training runs over a grid of settings, one table\n"
               "           (over MPI rank groups in a `make MPI=1` build)\n\n"
               "'eqprop <command> --help' lists each command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *c = argv[1];
    if (strcmp(c, "--help") == 0 || strcmp(c, "-h") == 0 || strcmp(c, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(c, "train") == 0 || strcmp(c, "sweep") == 0) {
        /* the only commands that run as a process group under mpirun */
        eqp_dist *world = NULL;
        if (eqp_dist_init(&argc, &argv, &world)) {
            cli_error(c, NULL);
            return EXIT_RUNTIME;
        }
        cli_group = world;
        int rc = c[1] == 'r' ? cmd_train(argc - 1, argv + 1) : cmd_sweep(argc - 1, argv + 1);
        eqp_dist_finalize();
        return rc;
    }
    if (strcmp(c, "eval") == 0)
        return cmd_eval(argc - 1, argv + 1);
    if (strcmp(c, "hopfield") == 0)
        return cmd_hopfield(argc - 1, argv + 1);
    if (strcmp(c, "gradcheck") == 0)
        return cmd_gradcheck(argc - 1, argv + 1);
    if (strcmp(c, "sep-sequence") == 0)
        return cmd_sep_sequence(argc - 1, argv + 1);
    if (strcmp(c, "export") == 0)
        return cmd_export(argc - 1, argv + 1);
    if (strcmp(c, "plot") == 0)
        return cmd_plot(argc - 1, argv + 1);
    if (strcmp(c, "delay-sweep") == 0)
        return cmd_delay_sweep(argc - 1, argv + 1);
    fprintf(stderr, "eqprop: unknown command '%s'\n", c);
    usage(stderr);
    return EXIT_USAGE;
}
