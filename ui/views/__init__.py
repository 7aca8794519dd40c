"""Page scripts for st.navigation; each calls one page() of the ui package."""
