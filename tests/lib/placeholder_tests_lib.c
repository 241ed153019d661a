/* placeholder so the library has a source until its module lands */
int tests_lib_placeholder;
