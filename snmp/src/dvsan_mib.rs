//! DVSAN-MIB object identifiers (filled in with mibs/DVSAN-MIB.txt).
