/* placeholder so the library has a source until its module lands */
int policy_placeholder;
