terraform {
  # terraform_data needs >= 1.4; Magic Castle 15.6.1 asks for >= 1.5.7, and so do we.
  required_version = ">= 1.5.7"
}
