/* Classifies a capture with an installed libdeeppacket, one JSON line per
 * verdict as `deeppacket classify -r CAPTURE --per flow` prints them:
 *   cc classify_pcap.c $(pkg-config --cflags --libs deeppacket) -o classify_pcap
 *   ./classify_pcap MODEL CAPTURE */
#include <deeppacket.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    char err[DEEPPACKET_ERRBUF_SIZE];
    if (argc != 3)
        return fprintf(stderr, "usage: %s MODEL CAPTURE\n", argv[0]), 2;
    deeppacket *dp = deeppacket_open(argv[1], err);
    deeppacket_pcap *pc = dp ? deeppacket_pcap_open(dp, argv[2], 1, 0, err) : NULL;
    const char *json;
    int rc = pc ? 0 : -1;
    while (pc && (rc = deeppacket_pcap_next(pc, &json, err)) == 1)
        puts(json);
    if (rc < 0)
        fprintf(stderr, "classify_pcap: %s\n", err);
    deeppacket_pcap_close(pc);
    deeppacket_close(dp);
    return rc < 0;
}
