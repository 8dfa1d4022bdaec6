// HTTP basic authentication (RFC 7617) for the listener's routes.
//
// Thread-safety: pure function.
#pragma once

#include <string>
#include <string_view>

namespace facility::http {

// Checks an "Authorization: Basic ..." header value against one user name and password.
// Comparison time does not depend on where the strings differ.
bool basic_auth_matches(std::string_view header, const std::string& user,
                        const std::string& password);

}  // namespace facility::http
