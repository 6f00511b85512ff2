/* Starts one thread and joins it: the smallest program that shows the arm64
 * hang of issue 12 (edge/README.md, "qemu: a thread needs a matching loader").
 * Under qemu-aarch64-static -L /usr/aarch64-linux-gnu it spins for ever in
 * pthread_create; under -L / (what the scripts use) it prints "joined". */
#include <pthread.h>
#include <stdio.h>

static void *run(void *arg) { return arg; }

int main(void) {
    pthread_t t;
    fprintf(stderr, "creating a thread\n");
    if (pthread_create(&t, NULL, run, NULL) != 0) {
        perror("pthread_create");
        return 1;
    }
    pthread_join(t, NULL);
    fprintf(stderr, "joined\n");
    return 0;
}
