// Sign in with JSON (no reload on a wrong password); the form still works without JS.
import { $, ApiError, api, clearError, config, setBusy, showError } from "./common.js";

const form = $("login-form");
const button = $("login-submit");
const error = $("login-error");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearError(error);
  const username = $("username").value.trim();
  const password = $("password").value;
  if (!username || !password) {
    showError(error, "Enter your username and password.");
    return;
  }
  setBusy(button, true);
  try {
    await api("POST", "/login", { json: { username, password }, noRedirect: true });
    window.location.assign(config.next);
  } catch (err) {
    const message =
      err instanceof ApiError && err.status === 401 ? "Wrong username or password." : err.message;
    showError(error, message);
    setBusy(button, false);
    $("password").select();
  }
});
