/* A perfectly good shared object that is not a Qallow plugin. */
int qallow_unrelated_function(int x) { return x + 1; }
