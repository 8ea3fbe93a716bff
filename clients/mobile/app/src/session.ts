// What the app tells the server about this device when the coach logs in.

/** deviceName names this phone or laptop for the device list: "Coach-app: Chrome op Android". */
export function deviceName(lang: "nl" | "en" = "nl"): string {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? "Edge" : /Firefox\//.test(ua) ? "Firefox" : /Chrom(e|ium)\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "browser";
  const os = /Android/.test(ua) ? "Android" : /iPhone|iPad/.test(ua) ? "iOS" : /Windows/.test(ua) ? "Windows" : /Mac OS/.test(ua) ? "macOS" : /Linux/.test(ua) ? "Linux" : "";
  return "Coach-app: " + browser + (os ? (lang === "en" ? " on " : " op ") + os : "");
}
