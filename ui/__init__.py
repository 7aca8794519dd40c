"""The Streamlit edge: chat, library and evaluation pages over the public `rag` API."""
