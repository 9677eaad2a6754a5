// Pages without their own script still get the shell (sign out, credits).
import "./common.js";
