trident_unit_test(test_errors test_errors.c LIBS trident_proto)
trident_unit_test(test_mpread test_mpread.c LIBS trident_proto)
trident_unit_test(test_frame test_frame.c LIBS trident_proto)
trident_unit_test(test_proto test_proto.c LIBS trident_proto_samples PkgConfig::MSGPACK)
