// A shared library without the slt entry point.
extern "C" __attribute__((visibility("default"))) int some_other_function() { return 42; }
