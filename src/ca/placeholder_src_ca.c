/* placeholder so the library has a source until its module lands */
int src_ca_placeholder;
