/* The ISCX VPN-nonVPN label table, built into the program so that
 * `preprocess` works without --labels. */
    .section .rodata
    .global dp_iscx_labels_tsv
    .type dp_iscx_labels_tsv, @object
dp_iscx_labels_tsv:
    .incbin "data/iscx-labels.tsv"
    .byte 0
    .section .note.GNU-stack,"",@progbits
