//! Embeds an rpath to the libpython of the interpreter named by PYO3_PYTHON (the project venv's
//! base interpreter), so the loader does not pick another libpython3.11.so at run time.

fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
}
