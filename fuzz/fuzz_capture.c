/* libFuzzer target for reading capture files (dp_capture_open_file and
 * dp_capture_next over libpcap): the input is the whole pcap or pcapng
 * file, so block and record lengths are the fuzzer's. Every frame returned
 * must be readable to its caplen (ASan sees a read past libpcap's buffer)
 * and every failure must name the file. */
#include <string.h>

#include "capture/dp_capture.h"
#include "fuzz_memfile.h"
#include "packet/dp_packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = memfile(data, size);
    char errbuf[DP_ERRBUF_SIZE];
    dp_capture *c = dp_capture_open_file(path, errbuf);
    if (!c) {
        ASSERT(strstr(errbuf, path) != NULL);
        return 0;
    }
    for (int n = 0; n < 10000; n++) {
        dp_frame f;
        dp_next r = dp_capture_next(c, &f, errbuf);
        if (r != DP_NEXT_FRAME) {
            ASSERT(r == DP_NEXT_END || (r == DP_NEXT_ERROR && strstr(errbuf, path) != NULL));
            break;
        }
        ASSERT(f.caplen <= size); /* a frame cannot hold more than the file */
        uint8_t sum = 0;
        for (uint32_t i = 0; i < f.caplen; i++)
            sum ^= f.data[i];
        uint8_t vec[DP_VEC_LEN];
        dp_pkt_info info;
        dp_packet_transform(f.linktype, f.data, f.caplen, vec, &info);
        (void)sum;
    }
    dp_capture_close(c);
    return 0;
}
