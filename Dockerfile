# CPU image of the app. Installs through requirements.txt, as the README does.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TF_CPP_MIN_LOG_LEVEL=3

RUN useradd --create-home --uid 1000 app
WORKDIR /app

COPY requirements.txt requirements-base.txt ./
RUN python -m pip install -r requirements.txt

COPY --chown=app:app app.py ./
COPY --chown=app:app .streamlit/ .streamlit/
COPY --chown=app:app denoiser/ denoiser/
COPY --chown=app:app pages/ pages/
COPY --chown=app:app models/ models/

USER app
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://localhost:8501/_stcore/health').status != 200)"

CMD ["streamlit", "run", "app.py", "--server.port=8501", "--server.address=0.0.0.0"]
