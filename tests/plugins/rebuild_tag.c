/* Linked into a second build of a real plugin (test-plugins/reload/phase13):
** the same code in a file with another digest, so that a hot swap really
** happens and the test can check that it changes nothing. */
__attribute__((visibility("default"), used)) const char qallow_rebuild_tag[] = "same code, another build";
