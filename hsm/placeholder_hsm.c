/* placeholder so the library has a source until its module lands */
int hsm_placeholder;
