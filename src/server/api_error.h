// wisp/server/api_error.h: errors in OpenAI's shape,
// {"error": {"message", "type", "param", "code"}}, with their HTTP status.
#pragma once

#include <string>

#include "common/error.h"

namespace wisp::server {

class ApiError : public Error {
 public:
  ApiError(int status, std::string message, std::string type, std::string param = "", std::string code = "")
      : Error(message), status(status), type(std::move(type)), param(std::move(param)), code(std::move(code)) {}
  int status;
  std::string type;   // invalid_request_error, authentication_error, rate_limit_error, server_error
  std::string param;  // the form field at fault, empty: null
  std::string code;   // empty: null
};

// 400 invalid_request_error naming the field.
inline ApiError bad_field(const std::string& param, const std::string& message,
                          const std::string& code = "invalid_value") {
  return ApiError(400, message, "invalid_request_error", param, code);
}

// The response body of an error.
std::string error_json(const ApiError& e);

}  // namespace wisp::server
