# shellcheck shell=bash
# preheat on Heroku Cedar. Heroku sources this before every dyno's command,
# with HOME the app dir (/app). It puts preheat on PATH and, on web dynos,
# starts the boot warm-up in the background: it waits for $PORT, warms, logs
# to the dyno's stream and exits by its [warmup] deadline. Sourced, so no
# exit, no set -e, and no variables or options left behind.
export PATH="$HOME/.heroku/preheat/bin:$PATH"
case "${DYNO-}" in
  web.*)
    if [ ! -e "$HOME/.heroku/preheat/web-gated" ]; then
      # The subshell exits at once, so the warmer is no job of the dyno's shell
      # and nothing waits on it; `warm --boot` calls setsid itself.
      ("$HOME/.heroku/preheat/bin/preheat" warm --boot --dir "$HOME" </dev/null &)
    fi
    ;;
esac
